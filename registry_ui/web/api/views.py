"""The API tokens page (/api/tokens/): make a token (shown once), see when each was last
used, revoke. Administrators also make service tokens for service accounts."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from registry_ui.core.policy import PolicyError
from registry_ui.web.api import tokens
from registry_ui.web.http import see_other
from registry_ui.web.models import API_SCOPES, ApiToken

SCOPE_HELP = {
    "read": "read templates, versions, diffs, requests, batches and the audit trail",
    "register": "validate and register template files",
    "request": "file, comment on and withdraw promotion and rollback requests",
    "review": "approve and reject requests (personal tokens of reviewers only)",
    "outcomes": "report outcome events of A/B experiments",
}


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    made = error = None
    values = {
        "name": "",
        "days": tokens.DEFAULT_DAYS,
        "scopes": ["read"],
        "account": "",
        "kind": "personal",
    }
    status = 200
    if request.method == "POST":
        values = {
            "name": request.POST.get("name", "")[:200],
            "days": request.POST.get("days", "")[:10],
            "scopes": request.POST.getlist("scopes")[:10],
            "account": request.POST.get("account", "")[:150],
            "kind": request.POST.get("kind", "personal")[:20],
        }
        try:
            _row, made = tokens.token_create(
                request.user,
                name=values["name"],
                scopes=values["scopes"],
                days=values["days"],
                kind=values["kind"],
                account=values["account"],
            )
            values = {**values, "name": ""}
        except PolicyError as refused:
            error, status = str(refused), 400
        except PermissionDenied as refused:
            error, status = str(refused), 403
    rows = tokens.tokens_of(request.user)
    service = (
        list(ApiToken.objects.filter(kind=ApiToken.Kind.SERVICE).select_related("user"))
        if request.user.is_superuser
        else []
    )
    return render(
        request,
        "registry_ui/api/tokens.html",
        {
            "rows": rows,
            "service_rows": service,
            "made": made,
            "error": error,
            "values": values,
            "scopes": [(s, SCOPE_HELP[s]) for s in API_SCOPES],
            "now": timezone.now(),
            "max_days": tokens.MAX_DAYS,
        },
        status=status,
    )


@login_required
@require_POST
def token_revoke(request, pk: int):
    try:
        tokens.token_revoke(request.user, pk)
    except PolicyError as refused:
        raise Http404(str(refused)) from None
    return see_other(reverse("api_tokens"))
