"""Passwords: at least 12 characters, not a common one, not like the user's name, not all
digits; and a page to change one's own (issue 16, Low)."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from registry_ui.web.models import AuditEvent

pytestmark = pytest.mark.django_db
OLD = "the old passphrase of alice"
NEW = "a brand new passphrase, 2026"


@pytest.fixture
def alice(alice):
    alice.set_password(OLD)
    alice.save()
    return alice


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Tr0ub4dor&3", "This password is too short. It must contain at least 12 characters."),
        ("password1234", "This password is too common."),
        ("alice@example.com!", "The password is too similar to the email address."),
        ("839204857163", "This password is entirely numeric."),
    ],
)
def test_a_weak_password_is_refused_saying_why(alice, password, problem):
    with pytest.raises(ValidationError) as refused:
        validate_password(password, alice)

    assert problem in refused.value.messages


def test_a_long_uncommon_password_is_accepted(alice):
    validate_password(NEW, alice)


def test_the_page_asks_for_the_old_password_and_the_new_one_twice(client, alice):
    client.force_login(alice)

    response = client.get("/accounts/password/")

    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == [
        "registry_ui/auth/password_change.html",
        "base.html",
    ]
    assert '<form method="post" action="/accounts/password/" class="stacked">' in response.text
    assert 'autocomplete="current-password"' in response.text
    assert response.text.count('autocomplete="new-password"') == 2
    assert "at least 12 characters" in response.text
    assert '<a href="/accounts/password/">Change password</a>' in response.text


def test_a_weak_new_password_is_refused_on_the_page(client, alice):
    client.force_login(alice)

    response = client.post(
        "/accounts/password/",
        {"old_password": OLD, "new_password1": "short", "new_password2": "short"},
    )

    assert response.status_code == 200
    assert "This password is too short. It must contain at least 12 characters." in response.text
    alice.refresh_from_db()
    assert alice.check_password(OLD)


def test_changing_it_keeps_this_session_signs_out_the_others_and_is_audited(client, alice):
    elsewhere = Client()
    client.force_login(alice)
    elsewhere.force_login(alice)

    response = client.post(
        "/accounts/password/", {"old_password": OLD, "new_password1": NEW, "new_password2": NEW}
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/changed/"
    done = client.get(response["Location"])
    assert "Your password was changed." in done.text
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    assert client.get("/").status_code == 200  # still signed in here
    assert elsewhere.get("/").status_code == 302  # signed out there
    event = AuditEvent.objects.filter(action="user.changed", object_id="alice").last()
    assert (event.actor, event.source, event.after) == (
        "alice",
        "dashboard",
        {"password_changed": True},
    )
    assert NEW not in str(event.after) and alice.password not in str(event.after)


def test_the_page_needs_a_sign_in(client):
    response = client.get("/accounts/password/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/password/"
