"""POST /api/v1/outcomes: calling services report outcome events of A/B experiments.

Moved onto the API from registry_ui.web.experiments.api with its contract kept: the same
URL, the same service tokens (made in the admin, under Service tokens), the same body and
answers; an error is a problem details object that still carries ``error`` (the message
the old endpoint sent). An API token with the ``outcomes`` scope is accepted too.
The whole batch is validated before anything is written
(registry_ui.web.experiments.ingestion.record_outcomes, one transaction).
"""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, transaction
from ninja import Router
from ninja.security import HttpBearer

from registry_ui.core.limits import loads_json
from registry_ui.web.api import tokens as api_tokens
from registry_ui.web.api.auth import REALM, limit
from registry_ui.web.api.problems import (
    COMMON,
    ApiProblem,
    Problem,
    refuse_nul_in,
    refuse_nul_in_url,
)
from registry_ui.web.api.schemas import OutcomesOut
from registry_ui.web.experiments import ingestion
from registry_ui.web.experiments import tokens as service_tokens
from registry_ui.web.models import ApiToken, Experiment, ServiceToken

router = Router(tags=["outcomes"])

ACCEPTED_TOKENS = (
    "Authorization: send 'Bearer <token>' with a service token that is not revoked "
    "(an administrator creates one in the admin, under Service tokens), or an API token "
    "with the outcomes scope"
)


def refused(message: str, status: int = 400, **headers) -> ApiProblem:
    titles = {401: "Not authenticated", 403: "Scope missing", 413: "Too many events"}
    return ApiProblem(
        status,
        "outcomes-refused" if status != 401 else "unauthorized",
        titles.get(status, "Outcome events refused"),
        message,
        headers=headers,
        error=message,  # the field the endpoint's clients read before problem details
    )


def _service_of(row: ApiToken) -> ServiceToken:
    """The ServiceToken row the outcome events of an API token are stored under."""
    name = f"api token {row.prefix} ({row.user.get_username()}/{row.name})"[:100]
    unusable = hashlib.sha256(f"api-token:{row.pk}".encode()).hexdigest()  # no bearer has it
    try:
        with transaction.atomic():
            service, _ = ServiceToken.objects.get_or_create(
                token_sha256=unusable,
                defaults={"name": name, "prefix": row.prefix[:12], "created_by": row.created_by},
            )
    except IntegrityError:
        service = ServiceToken.objects.get(token_sha256=unusable)
    # Service tokens report only the experiments they are given. An API token takes its
    # account's say: one who may define experiments (an analyst, who could name any service
    # on an experiment anyway) reports them all; anyone else none until one names it.
    if row.user.has_perm("registry_web.define_experiment"):
        service.experiments.add(*Experiment.objects.exclude(reporting_services=service))
    return service


class OutcomeAuth(HttpBearer):
    def __call__(self, request):
        refuse_nul_in_url(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token.startswith(api_tokens.TOKEN_PREFIX):
            try:
                row = api_tokens.authenticate(token)
            except api_tokens.TokenRefused as error:
                raise refused(str(error), 401, **{"WWW-Authenticate": REALM}) from None
            limit(row)
            if "outcomes" not in row.scopes:
                raise ApiProblem(
                    403,
                    "missing-scope",
                    "Scope missing",
                    f"this call needs a token with the 'outcomes' scope; token {row.prefix}... "
                    f"has {', '.join(row.scopes)}",
                    scope="outcomes",
                    error="this call needs a token with the 'outcomes' scope",
                )
            return _service_of(row)
        service = service_tokens.authenticate_service(header)
        if service is None:
            raise refused(ACCEPTED_TOKENS, 401, **{"WWW-Authenticate": REALM})
        return service

    def authenticate(self, request, token):  # pragma: no cover - __call__ does it all
        return None


@router.post(
    "/outcomes",
    auth=OutcomeAuth(),
    response={200: OutcomesOut, **COMMON, 400: Problem, 413: Problem},
    url_name="outcomes_api",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": {"type": "object"}}},
                    }
                }
            },
        }
    },
)
def outcomes(request):
    """Outcome events of A/B experiments (docs/experiments.md): at most 1,000 a batch,
    each stored once by its event_id."""
    if request.content_type != "application/json":
        raise refused(f"Content-Type: must be application/json, not {request.content_type!r}")
    try:
        payload = loads_json(request.body)
    except (UnicodeDecodeError, ValueError) as error:
        raise refused(f"body: not JSON ({error})") from None
    try:  # NUL only: the ingestion's own checks name the rest, as before the move
        refuse_nul_in(payload, surrogates=False)
    except ApiProblem as problem:
        raise refused(problem.detail) from None
    try:
        result = ingestion.record_outcomes(request.auth, payload)
    except ingestion.OutcomeRejected as error:
        raise refused(str(error), error.status) from None
    return {
        "received": result.received,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
    }
