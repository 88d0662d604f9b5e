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


def nul_problem(where: str) -> ApiProblem:
    return ApiProblem(
        400,
        "nul-character",
        "A NUL character",
        f"{where}: contains a NUL character (\\u0000), which no text here may hold",
        errors=[
            {"field": where, "message": "contains a NUL character", "accepted": "text without NUL"}
        ],
    )


def refuse_nul_in_url(request) -> None:
    """PostgreSQL text holds no NUL: refuse it in the path and query before any query."""
    if "\x00" in request.path:
        raise nul_problem("path")
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            raise nul_problem(f"query.{key.replace(chr(0), '')[:60]}")


def refuse_nul_in(value, where: str = "body", *, surrogates: bool = True) -> None:
    """Walk parsed JSON: a string (or key) holding NUL, or a lone surrogate, is refused,
    naming where it is."""
    if isinstance(value, str):
        if "\x00" in value:
            raise nul_problem(where)
        if not surrogates:
            return
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone UTF-16 surrogate ("\ud800" in the JSON)
            raise ApiProblem(
                400,
                "not-text",
                "Not text",
                f"{where}: holds a lone UTF-16 surrogate, which is not text",
                errors=[{"field": where, "message": "not UTF-8 text", "accepted": "UTF-8 text"}],
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                raise nul_problem(where)
            refuse_nul_in(item, f"{where}.{key}", surrogates=surrogates)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_nul_in(item, f"{where}[{index}]", surrogates=surrogates)
