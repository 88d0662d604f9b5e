"""POST /api/v1/outcomes: calling services report outcome events of A/B experiments.

Authenticated by a service token (``Authorization: Bearer <token>``, created in the admin),
not by a session: so no sign-in and no CSRF token (a browser cannot send the header on
its own). The whole batch is validated before anything is written; registry_ui.web.
ingestion.record_outcomes stores it in one transaction.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registry_ui.core.limits import loads_json
from registry_ui.web.experiments import ingestion, tokens


@csrf_exempt  # token-authenticated, never by cookie
@login_not_required  # idem
@never_cache
@require_POST
def outcomes(request):
    service = tokens.authenticate_service(request.headers.get("Authorization", ""))
    if service is None:
        response = _error(
            "Authorization: send 'Bearer <token>' with a service token that is not revoked "
            "(an administrator creates one in the admin, under Service tokens)",
            401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="registry_ui outcomes"'
        return response
    if request.content_type != "application/json":
        return _error(f"Content-Type: must be application/json, not {request.content_type!r}")
    try:
        payload = loads_json(request.body)
    except (UnicodeDecodeError, ValueError) as error:
        return _error(f"body: not JSON ({error})")
    try:
        result = ingestion.record_outcomes(service, payload)
    except ingestion.OutcomeRejected as error:
        return _error(str(error), error.status)
    return JsonResponse(
        {
            "received": result.received,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
        }
    )


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)
