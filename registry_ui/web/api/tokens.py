"""API tokens: made (shown once, kept hashed), revoked, and checked on each call.

Personal tokens are made by their user on the token page; service tokens by an
administrator for a service account (a CI pipeline). Every change is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.models import API_SCOPES, ApiToken, AuditEvent

TOKEN_PREFIX = "rui_api_"
MAX_DAYS = 366
DEFAULT_DAYS = 90
# A service token never carries "review": a pipeline is never one of a request's four eyes.
SERVICE_SCOPES = tuple(scope for scope in API_SCOPES if scope != "review")
# last_used_at is written at most this often, so calls do not queue on one row's lock.
LAST_USED_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_scopes(scopes: Iterable[str], kind: str) -> list[str]:
    chosen = []
    for scope in scopes:
        scope = str(scope).strip()
        if scope not in API_SCOPES:
            raise PolicyError(
                f"scope {scope[:40]!r} does not exist: choose from {', '.join(API_SCOPES)}"
            )
        if kind == ApiToken.Kind.SERVICE and scope == "review":
            raise PolicyError(
                "a service token cannot have the review scope: approving and rejecting "
                "are for people with the reviewer role, never for a pipeline"
            )
        if scope not in chosen:
            chosen.append(scope)
    if not chosen:
        raise PolicyError(f"choose at least one scope: {', '.join(API_SCOPES)}")
    return [scope for scope in API_SCOPES if scope in chosen]


def clean_days(days) -> int:
    try:
        number = int(days)
    except (TypeError, ValueError):
        raise PolicyError(f"expiry: {str(days)[:20]!r} is not a number of days") from None
    if not 1 <= number <= MAX_DAYS:
        raise PolicyError(f"expiry: {number} days; from 1 to {MAX_DAYS} days accepted")
    return number


def token_create(
    creator,
    *,
    name: str,
    scopes: Iterable[str],
    days: int = DEFAULT_DAYS,
    kind: str = ApiToken.Kind.PERSONAL,
    account: str | None = None,
) -> tuple[ApiToken, str]:
    """A new token; the token itself is returned once and never stored.

    Personal: for ``creator`` themselves. Service: an administrator's, for the service
    account named ``account`` (an existing user, whose permissions the token gets).
    """
    _signed_in(creator, "making an API token")
    if kind == ApiToken.Kind.SERVICE:
        permissions.require_superuser(creator, "makes service tokens")
        try:
            user = get_user_model().objects.get(username=(account or "").strip())
        except get_user_model().DoesNotExist:
            raise PolicyError(
                f"service account {account!r}: no such user; create the account first (in "
                "the admin) and give it the groups the pipeline needs, e.g. authors"
            ) from None
    elif kind == ApiToken.Kind.PERSONAL:
        user = creator
    else:
        raise PolicyError(f"kind {kind!r}: personal or service accepted")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise PolicyError("a name is required (at most 100 characters): say where it is used")
    chosen = clean_scopes(scopes, kind)
    expires_at = timezone.now() + timedelta(days=clean_days(days))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with trail.atomic():
        try:
            with transaction.atomic():
                row = ApiToken.objects.create(
                    name=name,
                    kind=kind,
                    user=user,
                    scopes=chosen,
                    token_sha256=token_hash(token),
                    prefix=token[: len(TOKEN_PREFIX) + 4],
                    created_by=creator.get_username(),
                    expires_at=expires_at,
                )
        except IntegrityError:
            raise PolicyError(
                f"{user.get_username()} has a token named {name!r} already: choose another name"
            ) from None
        _audit(creator.get_username(), "api_token.created", row)
    return row, token


def token_revoke(user, token_id: int) -> ApiToken:
    """Revoke a token: its owner may, and an administrator may revoke any. Idempotent."""
    _signed_in(user, "revoking an API token")
    with trail.atomic():
        try:
            row = ApiToken.objects.select_for_update().get(pk=token_id)
        except ApiToken.DoesNotExist:
            raise PolicyError(f"token #{token_id} does not exist") from None
        if row.user_id != user.pk and not user.is_superuser:
            permissions.require_superuser(user, "revokes another account's token")
        if row.revoked_at is None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
            _audit(user.get_username(), "api_token.revoked", row)
    return row


def _signed_in(user, action: str) -> None:
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(f"sign in before {action}")


def tokens_of(user) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).select_related("user"))


def _audit(actor: str, action: str, row: ApiToken) -> None:
    trail.record(
        actor=actor,
        action=action,
        object_type="api_token",
        object_id=f"{row.user.get_username()}/{row.name}",
        before=None,
        after={
            "kind": row.kind,
            "prefix": row.prefix,
            "scopes": row.scopes,
            "expires_at": row.expires_at.isoformat(),
            "revoked": row.revoked_at is not None,
        },
        source=AuditEvent.Source.DASHBOARD,
    )


class TokenRefused(Exception):
    """A bearer token that is not (or no longer) valid; the message says which."""


def authenticate(token: str, *, now: datetime | None = None) -> ApiToken:
    """The token's row, if valid; raises TokenRefused saying why not."""
    now = now or timezone.now()
    row = (
        ApiToken.objects.select_related("user")
        .filter(token_sha256=token_hash(token.strip()))
        .first()
    )
    if row is None:
        raise TokenRefused("the token is not known: check REGISTRY_UI_TOKEN")
    if row.revoked_at is not None:
        raise TokenRefused(f"token {row.prefix}... was revoked: make a new one")
    if row.expires_at <= now:
        raise TokenRefused(
            f"token {row.prefix}... expired on {row.expires_at:%Y-%m-%d %H:%M} UTC: make a new one"
        )
    if not row.user.is_active:
        raise TokenRefused(f"the account of token {row.prefix}... is deactivated")
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row
