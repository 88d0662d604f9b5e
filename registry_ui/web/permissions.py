"""Who may do what: the one home of the dashboard's authorisation rules.

Services call a require_*() before any state change (PermissionDenied, answered 403, says
which permission is missing and which role holds it); views and templates ask the matching
may_*() to show or hide an action, which is only a courtesy. The rules are Django
permissions of the registry_web app, held through the role groups
(registry_ui.web.auth.roles); nothing checks group names. Views that only read declare
their permission with Django's @permission_required and the names below.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

APP = "registry_web"

# Permissions that views declare with @permission_required.
VIEW_REQUESTS = f"{APP}.view_promotionrequest"
VIEW_METRICS = f"{APP}.view_metrics"
EXPORT_AUDIT = f"{APP}.export_auditevent"

# Which role holds each permission, named in refusals.
ROLE_OF = {
    "register_version": "authors",
    "request_promotion": "authors",
    "approve_promotion": "reviewers",
    "rollback_production": "reviewers",
    "comment_request": "authors or reviewers",
    "define_experiment": "the analysts group",
    "register_on_behalf": "the ci group",
    "view_metrics": "analysts",
}
# Authors and reviewers both save preview samples and retry failed operations.
AUTHOR_OR_REVIEWER = ("register_version", "approve_promotion")
# Metrics are read by the analysts (view_metrics), and, read-only, by the authors and the
# reviewers: an experiment's figures help them write and judge the versions it serves.
READ_METRICS = ("view_metrics", "register_version", "approve_promotion")
# Running a version's checks again is open to whoever may comment on requests.
RUN_CHECKS = "comment_request"
# The permission each filing page needs.
FILING = {
    "promote": "request_promotion",
    "rollback": "rollback_production",
    "release": "request_promotion",
}


def has(user, codename: str) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(f"{APP}.{codename}"))


def require(user, codename: str, action: str) -> None:
    """Refuse (403) unless the user holds the permission; the message names the role."""
    _require_signed_in(user, action)
    if not user.has_perm(f"{APP}.{codename}"):
        role = ROLE_OF.get(codename, "a role with that permission")
        raise PermissionDenied(f"{action} needs the {codename} permission ({role})")


def require_any(user, codenames: tuple[str, ...], action: str) -> None:
    """Refuse (403) unless the user holds one of these permissions."""
    _require_signed_in(user, action)
    if not any(user.has_perm(f"{APP}.{codename}") for codename in codenames):
        wanted = " or the ".join(f"{c} permission ({ROLE_OF[c]})" for c in codenames)
        raise PermissionDenied(f"{action} needs the {wanted}")


def require_superuser(user, action: str) -> None:
    if not (user and user.is_active and user.is_superuser):
        raise PermissionDenied(f"only an administrator {action}")


def is_ci_account(user) -> bool:
    """A pipeline's account (the ci group): it registers only on behalf of a person. A
    superuser holds every permission and is a person, never a CI account."""
    return has(user, "register_on_behalf") and not user.is_superuser


def _require_signed_in(user, action: str) -> None:
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(f"sign in before {action}")


# -- what a page offers ----------------------------------------------------------------------


def may_register(user) -> bool:
    return has(user, "register_version")


def may_save_samples(user) -> bool:
    return any(has(user, codename) for codename in AUTHOR_OR_REVIEWER)


def may_retry(user) -> bool:
    return any(has(user, codename) for codename in AUTHOR_OR_REVIEWER)


def may_run_checks(user) -> bool:
    return has(user, RUN_CHECKS)


def may_file(user, kind: str) -> bool:
    """``kind``: promote, rollback or release."""
    return has(user, FILING[kind])


def may_review(user) -> bool:
    return has(user, "approve_promotion")


def may_comment(user) -> bool:
    return has(user, "comment_request")


def may_export_audit(user) -> bool:
    return has(user, "export_auditevent")


def may_view_metrics(user) -> bool:
    return has(user, "view_metrics")


def may_read_metrics(user) -> bool:
    """The experiment pages and the compare page, read-only (defining needs more)."""
    return any(has(user, codename) for codename in READ_METRICS)


def require_read_metrics(user) -> None:
    require_any(user, READ_METRICS, "reading experiment results")


def may_view_requests(user) -> bool:
    return has(user, "view_promotionrequest")


def may_roll_back(user) -> bool:
    return has(user, "rollback_production")


def may_define_experiment(user) -> bool:
    return has(user, "define_experiment")


def request_actions(user, request) -> dict[str, bool]:
    """The forms a request's page shows this user (the services refuse the others anyway).

    Four eyes: a reviewer approves neither a request they filed nor a version they wrote,
    and approves once.
    """
    actionable = request.status == request.Status.OPEN and not request.release_id
    reviewer = may_review(user)
    own = request.requester_id == user.pk
    author = f",{user.get_username().casefold()}," in request.version_authors.casefold()
    approved = any(a.reviewer_id == user.pk for a in request.approvals.all())
    return {
        "approve": actionable and reviewer and not own and not author and not approved,
        "reject": actionable and reviewer and not own,
        "withdraw": actionable and (own or user.is_superuser),
        "comment": may_comment(user),
    }


def why_not_approve(user, request) -> str:
    """One plain sentence saying why this user is not offered Approve ("" when they are, or
    when the request is not open, which its status already says)."""
    if request.status != request.Status.OPEN:
        return ""
    if request.release_id:
        return "This request is part of a release: approve the release as a whole."
    if not may_review(user):
        return "Approving is for reviewers: you can comment, and a reviewer decides."
    if request.requester_id == user.pk:
        return "You filed this request, so another reviewer approves it (four eyes)."
    if f",{user.get_username().casefold()}," in request.version_authors.casefold():
        return "You wrote this version, so another reviewer approves it (four eyes)."
    if any(a.reviewer_id == user.pk for a in request.approvals.all()):
        return "You approved it already; it waits for another reviewer."
    return ""


def require_withdraw(user, request) -> None:
    if request.requester_id != user.pk and not user.is_superuser:
        raise PermissionDenied("only the requester (or an administrator) can withdraw it")
