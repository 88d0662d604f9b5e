"""Changes of users, groups and permissions are audited wherever they are made: the admin,
the shell, a command (issue 16: granting a role through the admin wrote no event)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

from registry_ui.web.auth.roles import AUTHORS, REVIEWERS
from registry_ui.web.models import AuditEvent

pytestmark = pytest.mark.django_db


def events_about(object_id: str, object_type: str = "user") -> list[tuple]:
    return [
        (e.actor, e.action, e.source, e.before, e.after)
        for e in AuditEvent.objects.filter(object_type=object_type, object_id=object_id)
        if not e.action.startswith("auth.")  # signing in and out: tests/web/auth/test_sign_in.py
    ]


def admin_change_form(user: User, **changes) -> dict:
    """What the admin's user change page posts, with ``changes`` made."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "initial-date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        **changes,
    }
    return {key: value for key, value in data.items() if value != ""}


def test_granting_a_role_in_the_admin_is_audited_as_the_administrator(client, root, reader):
    reviewers = Group.objects.get(name=REVIEWERS)
    client.force_login(root)

    response = client.post(
        f"/admin/auth/user/{reader.pk}/change/",
        admin_change_form(reader, groups=[reviewers.pk], is_staff="on"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert events_about("reader")[-2:] == [
        ("root", "user.changed", "dashboard", {"is_staff": False}, {"is_staff": True}),
        ("root", "user.groups_added", "dashboard", None, {"groups": ["reviewers"]}),
    ]


def test_taking_a_role_away_and_a_permission_are_audited_from_either_side(alice):
    authors = Group.objects.get(name=AUTHORS)
    export = Permission.objects.get(codename="export_auditevent")

    authors.user_set.remove(alice)
    alice.user_permissions.add(export)
    alice.user_permissions.clear()

    assert events_about("authors", "group")[-1] == (
        "system",
        "group.users_removed",
        "command",
        {"users": ["alice"]},
        None,
    )
    assert events_about("alice")[-2:] == [
        (
            "system",
            "user.permissions_added",
            "command",
            None,
            {"permissions": ["registry_web.export_auditevent"]},
        ),
        (
            "system",
            "user.permissions_removed",
            "command",
            {"permissions": ["registry_web.export_auditevent"]},
            None,
        ),
    ]


def test_a_group_and_its_permissions_are_audited():
    group = Group.objects.create(name="auditors")
    group.permissions.add(Permission.objects.get(codename="export_auditevent"))
    group.name = "internal-auditors"
    group.save()
    group.delete()

    assert [e[1] for e in events_about("auditors", "group")] == [
        "group.created",
        "group.permissions_added",
    ]
    assert events_about("internal-auditors", "group") == [
        ("system", "group.renamed", "command", {"name": "auditors"}, {"name": "internal-auditors"}),
        ("system", "group.deleted", "command", {"name": "internal-auditors"}, None),
    ]


def test_a_new_superuser_from_the_command_line_is_audited(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long passphrase nobody guesses")

    call_command(
        "createsuperuser",
        "--noinput",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        stdout=io.StringIO(),
    )

    (created,) = events_about("ops")
    assert created[:3] == ("system", "user.created", "command")
    assert created[4]["is_superuser"] is True
    assert "password" not in str(created)


def test_a_password_change_is_audited_without_the_password_or_its_hash(reader):
    reader.set_password("a long passphrase nobody guesses")
    reader.save()

    event = events_about("reader")[-1]
    assert event == ("system", "user.changed", "command", None, {"password_changed": True})
    assert reader.password not in str(event)


def test_signing_in_changes_no_account(client, reader):
    reader.set_password("a long passphrase nobody guesses")
    reader.save()
    count = AuditEvent.objects.filter(action__startswith="user.").count()

    client.post(
        "/accounts/login/",
        {"username": "reader", "password": "a long passphrase nobody guesses"},
    )

    assert "_auth_user_id" in client.session  # last_login was saved
    assert AuditEvent.objects.filter(action__startswith="user.").count() == count


def test_deleting_a_user_is_audited(reader):
    reader.delete()

    assert events_about("reader")[-1][:2] == ("system", "user.deleted")
