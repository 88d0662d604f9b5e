"""Users in the role groups (registry_ui.web.auth.roles). The cast most tests share is made of
these in tests/web/conftest.py; tests make their own extras with ``member``."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

from registry_ui.web.auth.roles import ADMINS


def member(username: str, *groups: str, email: str | None = None) -> User:
    """A user in the given groups, with no password (hashing one is slow); the email address
    is ``username@example.com`` unless given (``""`` for none)."""
    email = f"{username}@example.com" if email is None else email
    user = User.objects.create_user(username, email)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def superuser(username: str) -> User:
    """A superuser, in the admins group as a deployment's administrators are."""
    user = User.objects.create_superuser(username, f"{username}@example.com")
    user.groups.add(Group.objects.get(name=ADMINS))
    return user
