"""Errors in one shape: RFC 9457 problem details (``application/problem+json``).

Every refusal of the API answers a JSON object with ``type``, ``title``, ``status`` and
``detail`` (the plain-words reason), plus, where they apply, ``errors`` (one entry per
problem: the ``field`` or the template file ``path`` with its ``line`` and ``column``, the
``message``, and what is ``accepted``), ``scope`` (the scope a token lacks) and
``retry_after`` (seconds, with a 429).
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from ninja import Schema

PROBLEM_BASE = "https://registry-ui.invalid/problems/"  # a name, not a page to fetch
CONTENT_TYPE = "application/problem+json"


class ProblemError(Schema):
    message: str
    field: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None
    accepted: str | None = None


class Problem(Schema):
    """The body of every error answer (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemError] | None = None
    scope: str | None = None
    retry_after: int | None = None


class ApiProblem(Exception):
    """Raised anywhere under the API; answered as a problem details response."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem_response(request, problem: ApiProblem) -> JsonResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path if request is not None else None,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    body.update({k: v for k, v in problem.extra.items() if v is not None})
    response = JsonResponse(body, status=problem.status, content_type=CONTENT_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response


# The error answers each endpoint documents in the OpenAPI schema.
COMMON = {401: Problem, 403: Problem, 429: Problem}
READ = {**COMMON, 400: Problem, 404: Problem, 422: Problem}
WRITE = {**READ, 409: Problem}
