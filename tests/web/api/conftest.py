"""Fixtures of the API tests: tokens for the cast (tests/web/conftest.py), a client that
sends them, and mirror rows written straight into the database (no MLflow needed)."""

from __future__ import annotations

import pytest
from django.test import Client

from registry_ui.web.api import tokens
from registry_ui.web.auth.roles import AUTHORS
from registry_ui.web.models import API_SCOPES, ApiToken

# The browser fixtures of tests/browser, for test_pages_in_chromium.py (Chromium from the OS).
from tests.browser.conftest import browser, chromium_path, new_page, screenshot  # noqa: F401
from tests.support import mirror_rows
from tests.support.users import member

ALL = list(API_SCOPES)


class ApiClient:
    """Django's test client with a bearer token on every call."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.token = token

    def _headers(self, headers):
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        return sent

    def get(self, path, data=None, headers=None):
        return self.client.get("/api/v1" + path, data, headers=self._headers(headers))

    def post(self, path, body=None, headers=None):
        return self.client.post(
            "/api/v1" + path,
            body if body is not None else {},
            content_type="application/json",
            headers=self._headers(headers),
        )


def personal(user, scopes=ALL, name="tests", days=30) -> ApiClient:
    _, raw = tokens.token_create(user, name=name, scopes=scopes, days=days)
    return ApiClient(raw)


@pytest.fixture
def api_for():
    """api_for(user, scopes) -> a client with a new personal token of that user."""
    count = iter(range(1000))

    def make(user, scopes=ALL):
        return personal(user, scopes, name=f"tests-{next(count)}")

    return make


@pytest.fixture
def ci_bot(db):
    return member("ci-bot", AUTHORS)


@pytest.fixture
def service_api(root, ci_bot):
    """A service token of the ci-bot account (an author) with every scope it may have."""
    _, raw = tokens.token_create(
        root,
        name="pipeline",
        scopes=tokens.SERVICE_SCOPES,
        kind=ApiToken.Kind.SERVICE,
        account="ci-bot",
    )
    return ApiClient(raw)


@pytest.fixture
def world(db):
    """Two templates with versions in every stage, in the mirror only."""
    greeting = mirror_rows.template("team/greeting")
    mirror_rows.version(greeting, "1.0.0", "Hi {who}", stage="production", was_production=True)
    mirror_rows.version(greeting, "1.1.0", "Hello {who}, from {place}", stage="staging")
    mirror_rows.version(greeting, "1.2.0", "Hey {who}", stage="dev", author="alice")
    farewell = mirror_rows.template("team/farewell")
    mirror_rows.version(farewell, "0.1.0", "Bye {who}")
    return {"greeting": greeting, "farewell": farewell}
