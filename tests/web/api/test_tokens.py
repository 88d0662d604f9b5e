"""API tokens: made and shown once, stored hashed, scoped, expiring, revocable; the 401,
403 and 429 answers as problem details; the tokens page."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from registry_ui.core.policy import PolicyError
from registry_ui.web.api import tokens
from registry_ui.web.models import ApiToken, AuditEvent
from tests.support.mirror_rows import signed_in
from tests.web.api.conftest import ApiClient, personal

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    cache.clear()
    yield
    cache.clear()


def test_a_token_is_shown_once_and_only_its_hash_is_kept(alice):
    row, raw = tokens.token_create(alice, name="laptop", scopes=["read"], days=30)

    stored = ApiToken.objects.filter(pk=row.pk).values().get()
    assert raw.startswith("rui_api_") and len(raw) > 40
    assert stored["token_sha256"] == hashlib.sha256(raw.encode()).hexdigest()
    assert not any(raw in str(value) for value in stored.values())
    assert raw.startswith(stored["prefix"]) and len(stored["prefix"]) == 12
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor == "alice" and event.object_id == "alice/laptop"
    assert raw not in str(event.after)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scopes": ["read", "write"]}, "scope 'write' does not exist"),
        ({"scopes": []}, "choose at least one scope"),
        ({"days": 0}, "from 1 to 366 days accepted"),
        ({"days": 400}, "from 1 to 366 days accepted"),
        ({"name": " "}, "a name is required"),
    ],
)
def test_a_token_with_bad_settings_is_refused_saying_what_is_accepted(alice, change, message):
    with pytest.raises(PolicyError, match=message):
        tokens.token_create(alice, **{"name": "x", "scopes": ["read"], "days": 5, **change})
    assert not ApiToken.objects.exists()


def test_a_service_token_is_made_by_an_administrator_and_never_with_review(root, alice, ci_bot):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="only an administrator"):
        tokens.token_create(alice, name="ci", scopes=["read"], kind="service", account="ci-bot")
    with pytest.raises(PolicyError, match="cannot have the review scope"):
        tokens.token_create(root, name="ci", scopes=["review"], kind="service", account="ci-bot")
    with pytest.raises(PolicyError, match="no such user"):
        tokens.token_create(root, name="ci", scopes=["read"], kind="service", account="nobody")

    row, _ = tokens.token_create(root, name="ci", scopes=["read"], kind="service", account="ci-bot")

    assert row.user == ci_bot and row.kind == "service" and row.created_by == "root"


def test_calls_without_a_valid_token_get_401_saying_why(alice, world):
    good = personal(alice, ["read"], name="good")
    expired_row, expired = tokens.token_create(alice, name="old", scopes=["read"], days=1)
    ApiToken.objects.filter(pk=expired_row.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked_row, revoked = tokens.token_create(alice, name="gone", scopes=["read"], days=1)
    tokens.token_revoke(alice, revoked_row.pk)

    answers = {
        "none": ApiClient(None).get("/templates"),
        "basic": ApiClient(None).get("/templates", headers={"Authorization": "Basic eDp5"}),
        "unknown": ApiClient("rui_api_nope").get("/templates"),
        "expired": ApiClient(expired).get("/templates"),
        "revoked": ApiClient(revoked).get("/templates"),
    }

    assert good.get("/templates").status_code == 200
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 401)
    for response in answers.values():
        assert response["Content-Type"] == PROBLEM
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401 and response.json()["type"].endswith("unauthorized")
    assert "Authorization: Bearer <token>" in answers["none"].json()["detail"]
    assert "not known" in answers["unknown"].json()["detail"]
    assert "expired on" in answers["expired"].json()["detail"]
    assert "was revoked" in answers["revoked"].json()["detail"]


def test_a_deactivated_account_s_token_is_refused(alice, world):
    api = personal(alice, ["read"])
    alice.is_active = False
    alice.save()

    response = api.get("/templates")

    assert response.status_code == 401 and "deactivated" in response.json()["detail"]


def test_a_token_without_the_scope_gets_403_naming_it(alice, world):
    reader = personal(alice, ["read"])

    response = reader.post("/batches", {"files": []})

    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["scope"] == "register" and "'register' scope" in body["detail"]
    assert "has read" in body["detail"]
    no_read = personal(alice, ["register"], name="register-only").get("/templates")
    assert no_read.status_code == 403 and no_read.json()["scope"] == "read"


def test_last_use_is_recorded_at_most_once_a_minute(alice, world):
    row, raw = tokens.token_create(alice, name="t", scopes=["read"])
    assert row.last_used_at is None

    ApiClient(raw).get("/templates")
    first = ApiToken.objects.get(pk=row.pk).last_used_at
    ApiClient(raw).get("/templates")

    assert first is not None
    assert ApiToken.objects.get(pk=row.pk).last_used_at == first


def test_past_the_rate_a_token_gets_429_with_retry_after(alice, bob, world, monkeypatch):
    monkeypatch.setenv("REGISTRY_UI_API_RATE_PER_MINUTE", "3")
    api, other = personal(alice, ["read"]), personal(bob, ["read"])

    answers = [api.get("/templates").status_code for _ in range(4)]
    refused = api.get("/templates")

    assert answers == [200, 200, 200, 429]
    assert refused.status_code == 429 and refused["Content-Type"] == PROBLEM
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert refused.json()["retry_after"] == int(refused["Retry-After"])
    assert "more than 3 calls this minute" in refused.json()["detail"]
    assert other.get("/templates").status_code == 200  # per token


def test_the_tokens_page_shows_a_new_token_once_then_only_its_prefix(alice):
    client = signed_in(alice)

    form = {"name": "laptop", "scopes": ["read", "request"], "days": "30"}
    made = client.post("/api/tokens/", form)
    raw = made.context["made"]
    again = client.get("/api/tokens/")

    assert made.status_code == 200 and raw in made.text
    assert raw not in again.text and raw[:12] in again.text
    assert "read, request" in again.text and "never" in again.text
    row = ApiToken.objects.get(name="laptop")
    revoked = client.post(f"/api/tokens/{row.pk}/revoke")
    assert revoked.status_code == 303
    assert ApiToken.objects.get(pk=row.pk).revoked_at is not None
    assert "revoked" in client.get("/api/tokens/").text


def test_the_tokens_page_refuses_bad_input_saying_why(alice):
    response = signed_in(alice).post("/api/tokens/", {"name": "x", "scopes": ["nope"], "days": "3"})

    assert response.status_code == 400
    assert "scope &#x27;nope&#x27; does not exist" in response.text
    assert not ApiToken.objects.exists()


def test_someone_else_s_token_cannot_be_revoked_but_an_administrator_may(alice, bob, root):
    row, _ = tokens.token_create(alice, name="mine", scopes=["read"])

    assert signed_in(bob).post(f"/api/tokens/{row.pk}/revoke").status_code == 403
    assert ApiToken.objects.get(pk=row.pk).revoked_at is None
    assert signed_in(root).post(f"/api/tokens/{row.pk}/revoke").status_code == 303
    assert ApiToken.objects.get(pk=row.pk).revoked_at is not None
