"""Sign-in (registry_ui.web.auth): throttled per username and address, per username and per
address (with higher limits), on the dashboard's form and the admin's, and audited without
the password."""

from __future__ import annotations

import secrets
import uuid

import pytest
from django.contrib.auth.models import User

from registry_ui.web.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


# --- throttled sign-in -------------------------------------------------------------------


@pytest.fixture
def alice():
    # Not the cast's alice (tests/web/conftest.py): a password to sign in with, and unique
    # names and addresses: counts outlive a test in Redis (CI), for a whole window.
    return User.objects.create_user(f"alice-{uuid.uuid4().hex[:8]}", password=PASSWORD)


@pytest.fixture
def address():
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def sign_in(client, username, password, address, url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def other_address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def test_it_refuses_sign_in_after_five_failures_for_a_username_from_one_address(
    client, alice, address
):
    for _ in range(5):
        assert sign_in(client, alice.username, "wrong", address).status_code == 200
    failures = AuditEvent.objects.filter(action="auth.sign_in_failed").count()

    response = sign_in(client, alice.username.upper(), PASSWORD, address)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 800
    assert "Wait 15 minutes before trying again" in response.text
    assert "_auth_user_id" not in client.session
    # Not an authentication: no new failure was counted or audited.
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == failures


def test_five_failures_from_one_address_leave_the_user_free_to_sign_in_from_another(
    client, alice, address
):
    for _ in range(5):
        sign_in(client, alice.username, "wrong", address)

    assert sign_in(client, alice.username, PASSWORD, other_address()).status_code == 302


def test_a_username_is_refused_everywhere_after_its_limit_from_many_addresses(
    client, alice, settings
):
    settings.LOGIN_FAILURE_USERNAME_LIMIT = 8
    for _ in range(8):
        sign_in(client, alice.username, "wrong", other_address())

    assert sign_in(client, alice.username, PASSWORD, other_address()).status_code == 429


def test_colleagues_typos_behind_one_address_do_not_lock_the_others_out(client, alice, address):
    # An office behind one proxy address: five people each get their password wrong once.
    for _ in range(5):
        sign_in(client, f"colleague-{uuid.uuid4().hex[:8]}", "wrong", address)

    assert sign_in(client, alice.username, PASSWORD, address).status_code == 302


def test_an_address_trying_many_usernames_is_refused_after_the_address_limit(
    client, alice, address, settings
):
    settings.LOGIN_FAILURE_ADDRESS_LIMIT = 12
    for _ in range(12):
        sign_in(client, f"nobody-{uuid.uuid4().hex[:8]}", "wrong", address)

    assert sign_in(client, alice.username, PASSWORD, address).status_code == 429
    assert sign_in(client, alice.username, PASSWORD, other_address()).status_code == 302


def test_a_success_clears_the_username_count(client, alice, address, settings):
    settings.LOGIN_FAILURE_USERNAME_LIMIT = 6
    for _ in range(4):
        sign_in(client, alice.username, "wrong", address)
    assert sign_in(client, alice.username, PASSWORD, address).status_code == 302
    client.logout()

    for _ in range(4):
        sign_in(client, alice.username, "wrong", address)

    assert sign_in(client, alice.username, PASSWORD, address).status_code == 302


def test_the_admin_sign_in_is_throttled_too(client, alice, address):
    alice.is_staff = True
    alice.save()
    for _ in range(5):
        sign_in(client, alice.username, "wrong", address)

    response = sign_in(client, alice.username, PASSWORD, address, url="/admin/login/")

    assert response.status_code == 200  # the admin's form, saying the sign-in failed
    assert "_auth_user_id" not in client.session


def test_a_changed_limit_applies(client, alice, address, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        sign_in(client, alice.username, "wrong", address)

    assert sign_in(client, alice.username, PASSWORD, address).status_code == 429


# --- sign-in is audited ------------------------------------------------------------------


def test_signing_in_failing_and_signing_out_are_audited_without_the_password(
    client, alice, address
):
    sign_in(client, alice.username, "wrong-secret", address)
    sign_in(client, alice.username, PASSWORD, address)
    client.post("/accounts/logout/", REMOTE_ADDR=address)

    events = AuditEvent.objects.filter(
        object_type="user", object_id=alice.username, action__startswith="auth."
    )
    assert [(e.actor, e.action, e.source, e.after) for e in events] == [
        ("anonymous", "auth.sign_in_failed", "dashboard", {"ip": address}),
        (alice.username, "auth.signed_in", "dashboard", {"ip": address}),
        (alice.username, "auth.signed_out", "dashboard", {"ip": address}),
    ]
    assert all(e.before is None for e in events)
    assert "wrong-secret" not in str([(e.before, e.after) for e in events])
