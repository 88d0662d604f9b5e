"""Shared by the commands that file promotion requests from a CI pipeline."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.models import AuditEvent, PromotionRequest, TemplateVersion
from registry_ui.web.reviews import services as reviews


def requesting_user(username: str | None):
    """The account a pipeline files requests as: it must exist and hold request_promotion."""
    if not username:
        raise CommandError(
            "--user is required to file promotion requests: the account the pipeline acts as "
            "(a member of the authors group)"
        )
    try:
        user = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(
            f"--user {username!r}: no such user; create it and add it to the authors group"
        ) from None
    try:
        permissions.require(user, "request_promotion", "filing promotion requests")
    except PermissionDenied as error:
        raise CommandError(f"--user {username!r}: {error}") from None
    return user


def registering_user(username: str | None):
    """The account a registration is recorded as: it must exist, be active and hold
    register_version (the authors or ci group). It is an author of every version it writes."""
    if not username:
        raise CommandError(
            "--user is required: the account that registers (its name is recorded as an "
            "author of every version, and may not approve them); a pipeline uses its CI "
            "account with --on-behalf-of the person who asked"
        )
    try:
        user = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(
            f"--user {username!r}: no such user; create it and add it to the authors group "
            "(a person) or the ci group (a pipeline)"
        ) from None
    try:
        permissions.require(user, "register_version", "registering versions")
    except PermissionDenied as error:
        raise CommandError(f"--user {username!r}: {error}") from None
    return user


def file_one(user, name: str, version: str, target: str, justification: str) -> tuple[str, str]:
    """File one request; returns (outcome, line) with outcome filed, open or refused.

    Re-running a pipeline is safe: a version already in (or past) the target, or with a
    request open for it, counts as "open" rather than refused.
    """
    stage = (
        TemplateVersion.objects.filter(template__name=name, version=version)
        .values_list("stage", flat=True)
        .first()
    )
    if stage == target or (target == "staging" and stage == "production"):
        return "open", f"{name} {version} -> {target}: already {stage}"
    already = PromotionRequest.objects.filter(
        template__name=name,
        version__version=version,
        target_stage=target,
        status__in=PromotionRequest.ACTIVE,
    ).first()
    if already is not None:
        return "open", f"{name} {version} -> {target}: request #{already.pk} is {already.status}"
    try:
        request = reviews.file_request(
            user,
            template_name=name,
            version=version,
            target=target,
            justification=justification,
            source=AuditEvent.Source.COMMAND,
        )
    except PolicyError as error:
        return "refused", f"refused: {error}"
    return "filed", (
        f"{name} {version} -> {target}: request #{request.pk} filed, "
        f"{request.required_approvals} approval(s) needed"
    )
