"""Who calls: the bearer token, its scopes and its rate limit.

Each endpoint names the scope it needs (``need(request, "register")``); a token without it
is refused with 403 naming the scope. Each token may make ``REGISTRY_UI_API_RATE_PER_MINUTE``
calls a minute (Django's cache counts them, shared by every process with Redis); past it,
429 with ``Retry-After``.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from ninja.security import HttpBearer

from registry_ui import config
from registry_ui.web.api import tokens
from registry_ui.web.api.problems import ApiProblem, refuse_nul_in_url
from registry_ui.web.models import ApiToken

RATE_VARIABLE = "REGISTRY_UI_API_RATE_PER_MINUTE"
DEFAULT_RATE = 600
WINDOW = 60
REALM = 'Bearer realm="registry_ui api"'


def unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401,
        "unauthorized",
        "Not authenticated",
        detail,
        headers={"WWW-Authenticate": REALM},
    )


class TokenAuth(HttpBearer):
    """``Authorization: Bearer rui_api_...``: a personal or service API token."""

    def __call__(self, request):
        refuse_nul_in_url(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized(
                "send 'Authorization: Bearer <token>' with an API token (make one on the "
                "dashboard's API tokens page, /api/tokens/)"
            )
        return self.authenticate(request, token)

    def authenticate(self, request, token: str) -> ApiToken:
        try:
            row = tokens.authenticate(token)
        except tokens.TokenRefused as error:
            raise unauthorized(str(error)) from None
        limit(row)
        request.user = row.user  # the account the token acts as
        request.api_token = row
        return row


def rate_per_minute() -> int:
    return config.env_int(RATE_VARIABLE, DEFAULT_RATE, minimum=1)


def limit(row: ApiToken) -> None:
    """Count the call in this minute's window; refuse past the token's rate."""
    now = time.time()
    window = int(now // WINDOW)
    key = f"api-rate:{row.pk}:{window}"
    if cache.add(key, 1, timeout=WINDOW + 5):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=WINDOW + 5)
            count = 1
    allowed = rate_per_minute()
    if count > allowed:
        wait = max(1, int((window + 1) * WINDOW - now) + 1)
        raise ApiProblem(
            429,
            "rate-limited",
            "Too many requests",
            f"token {row.prefix}... made more than {allowed} calls this minute "
            f"({RATE_VARIABLE}); try again in {wait} s",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )


def need(request, scope: str) -> ApiToken:
    """The calling token, if it has ``scope``; else 403 naming the scope missing."""
    row: ApiToken = request.auth
    if scope not in row.scopes:
        raise ApiProblem(
            403,
            "missing-scope",
            "Scope missing",
            f"this call needs a token with the {scope!r} scope; token {row.prefix}... has "
            f"{', '.join(row.scopes) or 'none'}. Make a token with {scope!r} on the API "
            "tokens page",
            scope=scope,
        )
    return row
