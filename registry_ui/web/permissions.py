"""Who may do what: the one home of the dashboard's authorisation rules.

Services call require() before any state change (PermissionDenied, answered 403, names the
permission and the role that holds it); views and templates ask may_*() to show or hide an
action. Rules are Django permissions of the registry_web app, held through the role groups
(registry_ui.web.auth.roles); nothing checks group names."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied

PERMISSION_ROLES = {
    "request_promotion": "authors",
    "approve_promotion": "reviewers",
    "rollback_production": "reviewers",
    "comment_request": "authors or reviewers",
}


def require(user, codename: str, action: str) -> None:
    """Refuse (403) unless the user holds the permission; the message names the role."""
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(f"sign in to {action}")
    if not user.has_perm(f"registry_web.{codename}"):
        role = PERMISSION_ROLES.get(codename, "a role with that permission")
        raise PermissionDenied(f"{action} needs the {codename} permission ({role})")


# Who may save samples or retry operations: authors and reviewers.
AUTHOR_OR_REVIEWER = ("registry_web.register_version", "registry_web.approve_promotion")


def _require_any(user, permissions: Iterable[str], action: str) -> None:
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(f"sign in to {action}")
    if not any(user.has_perm(p) for p in permissions):
        raise PermissionDenied(
            f"{action} needs the register_version permission (authors) or the "
            "approve_promotion permission (reviewers)"
        )


def may_save_samples(user) -> bool:
    return any(user.has_perm(p) for p in AUTHOR_OR_REVIEWER)


may_retry = may_save_samples
