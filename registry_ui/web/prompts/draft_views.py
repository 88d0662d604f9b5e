"""The new-version editor: checked as the author types, then filed as a batch."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from registry_ui.core.semver import Bump, SemVer
from registry_ui.web import permissions
from registry_ui.web.http import after_form
from registry_ui.web.models import Batch, Operation
from registry_ui.web.prompts import drafts, selectors
from registry_ui.web.prompts.forms import NewVersionForm

NEW_VERSION = "registry_ui/prompts/new_version.html"
FILED = "registry_ui/prompts/draft_filed.html"


@login_required
@require_http_methods(["GET", "POST"])
def version_create(request):
    if request.method == "GET":
        name = request.GET.get("template", "").strip()
        folder = request.GET.get("folder", "").strip().strip("/")
        form = NewVersionForm(_starting_values(name, request.user, folder=folder), starting=True)
        form.is_valid()  # cleaning gives the fields their values; the check shows with a name
        return _editor(request, form, checked=bool(name))
    # Refused (403) before the draft is checked, whatever it holds.
    permissions.require(request.user, "register_version", "registering a version")
    form = NewVersionForm(request.POST)
    if form.is_valid():
        try:
            batch = drafts.version_file(request.user, **form.filing_arguments())
        except drafts.DraftRefused as refused:
            for field, message in refused.problems:
                form.add_error(field, message)
        else:
            return after_form(request, reverse("version_filed", args=[batch.pk]))
    return _editor(request, form, checked=True, refused=True, status=400)


def _starting_values(name: str, user, *, folder: str = "") -> dict[str, str]:
    """The template's latest version, with the next patch version suggested; the one writing
    it is its author (the latest version's author wrote the latest). A new template starts
    in the folder it was asked from, with its author filled in."""
    latest = selectors.latest_version(name) if name else None
    if latest is None:
        return {
            "name": name or (f"{folder}/" if folder else ""),
            "version": "1.0.0",
            "metadata": json.dumps({"author": user.get_username()}),
        }
    metadata = dict(latest.metadata)
    if "author" in metadata:
        metadata["author"] = user.get_username()
    return {
        "name": name,
        "version": str(SemVer.parse(latest.version).bumped(Bump.PATCH)),
        "template": latest.text,
        "metadata": json.dumps(metadata, ensure_ascii=False, indent=2),
        # A chat template stays one: its messages, model configuration and response format.
        "chat": json.dumps(latest.extra, ensure_ascii=False, indent=2) if latest.extra else "",
    }


@login_required
@require_POST
def version_validate(request):
    """Live validation of the editor: checks the draft against the mirror, files nothing."""
    form = NewVersionForm(request.POST)
    form.is_valid()  # valid or not, the page shows what the check found
    if request.htmx:
        return _editor(request, form, checked=True, partial="#version-check")
    return _editor(request, form, checked=True)  # the Check button, without JavaScript


def _editor(
    request, form, *, checked: bool, refused: bool = False, status: int = 200, partial: str = ""
):
    context = {
        "form": form,
        "checked": checked,
        "refused": refused,
        "may_register": permissions.may_register(request.user),
    }
    return render(request, NEW_VERSION + partial, context, status=status)


@login_required
@require_GET
def version_filed(request, pk: int):
    """After filing: the batch's progress (polled while it runs), then where to go next."""
    # The editor files one registration a batch; other batches have their own page.
    operation = (
        Operation.objects.select_related("batch")
        .filter(batch_id=pk, kind=Operation.Kind.REGISTER)
        .order_by("position")
        .first()
    )
    if operation is None:
        raise Http404(f"no batch {pk} with a version to register")
    batch = operation.batch
    finished = batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED)
    context = {
        "batch": batch,
        "operation": operation,
        "finished": finished,
        "may_request": permissions.may_file(request.user, "promote"),
    }
    if request.htmx:
        return render(request, FILED + "#filing", context)
    return render(request, FILED, context)
