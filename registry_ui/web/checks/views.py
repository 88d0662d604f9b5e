"""Running a version's test cases on demand (its page shows the results partial)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from registry_ui.web.checks import services
from registry_ui.web.models import TemplateVersion

RESULTS = "registry_ui/checks/_results.html"


@login_required
@require_POST
def version_run_checks(request, pk: int):
    """Run the checks again (authors and reviewers); htmx gets the partial, a form a 303."""
    get_object_or_404(TemplateVersion, pk=pk)
    services.version_run_checks(user=request.user, version_id=pk)  # PermissionDenied: 403
    next_url = request.POST.get("next", "")
    if request.htmx:
        version = TemplateVersion.objects.select_related("template").get(pk=pk)
        context = services.results_context(
            version, user=request.user, compare_stage=request.POST.get("compare_stage") or None
        )
        return render(request, RESULTS, {**context, "next_url": next_url})
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("template_list")
    return HttpResponseRedirect(next_url, status=303)
