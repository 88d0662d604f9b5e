"""The operations pages: batches with live progress, failed operations, retry."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.http import after_form
from registry_ui.web.models import Batch
from registry_ui.web.operations import queue, selectors

BATCH_STATUSES = {
    "": "All",
    "running": "Running",
    Batch.Status.FAILED: "Failed",
    Batch.Status.SUCCEEDED: "Succeeded",
}


@login_required
@require_GET
def operation_list(request):
    status = request.GET.get("status", "")
    if status not in BATCH_STATUSES:
        status = ""
    page, rows = selectors.batch_page(request.GET.get("page"), status=status)
    return render(
        request,
        "registry_ui/operations/operations.html",
        {
            "page": page,
            "rows": rows,
            "status": status,
            "statuses": BATCH_STATUSES,
            "failed": selectors.failed_operations(),
            "may_retry": permissions.may_retry(request.user),
        },
    )


@login_required
@require_GET
def batch_detail(request, pk: int):
    row, operations = selectors.batch_detail(pk)
    context = {
        "row": row,
        "operations": operations,
        "may_retry": permissions.may_retry(request.user),
    }
    if request.htmx:
        return render(request, "registry_ui/operations/batch.html#batch-detail", context)
    return render(request, "registry_ui/operations/batch.html", context)


@login_required
@require_GET
def batch_progress(request, pk: int):
    """A batch's progress bar: polled every 2 s while it runs; the finished fragment has no
    trigger, which stops the polling."""
    row, _ = selectors.batch_detail(pk)
    return render(request, "registry_ui/operations/_progress.html", {"row": row})


@login_required
@require_POST
def operation_retry(request):
    ids = request.POST.getlist("operation")
    back = request.POST.get("next", "")
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("operation_list")
    try:
        count = queue.operations_retry(request.user, operation_ids=ids)
    except PolicyError as error:  # PermissionDenied goes on up: Django answers 403
        return render(
            request,
            "registry_ui/operations/retry_refused.html",
            {"error": str(error), "back": back},
            status=400,
        )
    separator = "&" if "?" in back else "?"
    url = f"{back}{separator}{urlencode({'retried': count})}"
    return after_form(request, url)
