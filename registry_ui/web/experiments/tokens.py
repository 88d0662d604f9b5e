"""Service tokens: how calling services authenticate to report outcomes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.experiments.definitions import audit_change
from registry_ui.web.models import AuditEvent, Experiment, ServiceToken


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def service_token_create(
    user, *, name: str, experiments: Iterable[str] = ()
) -> tuple[ServiceToken, str]:
    """A new token for a calling service, allowed to report the outcomes of the experiments
    named by key (more are granted when an experiment is defined); the token itself is
    returned once, never stored."""
    permissions.require_superuser(user, "creates service tokens")
    name = (name or "").strip()
    if not name:
        raise PolicyError("a name is required: name the service that will use the token")
    keys = sorted(set(experiments))
    scope = list(Experiment.objects.filter(key__in=keys))
    unknown = sorted(set(keys) - {e.key for e in scope})
    if unknown:
        raise PolicyError(f"no experiment with key {', '.join(map(repr, unknown))}")
    token = "rui_" + secrets.token_urlsafe(32)
    with trail.atomic():
        try:
            with transaction.atomic():
                row = ServiceToken.objects.create(
                    name=name,
                    token_sha256=_token_hash(token),
                    prefix=token[:12],
                    created_by=user.get_username(),
                )
        except IntegrityError:
            raise PolicyError(f"a service token named {name!r} exists already") from None
        row.experiments.set(scope)
        audit_change(
            user.get_username(),
            "service_token.created",
            "service_token",
            name,
            {"prefix": row.prefix, "experiments": keys},
            AuditEvent.Source.DASHBOARD,
        )
    return row, token


def service_token_revoke(user, token_ids: Iterable[int]) -> int:
    permissions.require_superuser(user, "revokes service tokens")
    with trail.atomic():
        rows = list(
            ServiceToken.objects.select_for_update().filter(
                pk__in=list(token_ids), revoked_at__isnull=True
            )
        )
        now = timezone.now()
        for row in rows:
            ServiceToken.objects.filter(pk=row.pk).update(revoked_at=now)
            audit_change(
                user.get_username(),
                "service_token.revoked",
                "service_token",
                row.name,
                {"prefix": row.prefix},
                AuditEvent.Source.DASHBOARD,
            )
    return len(rows)


def authenticate_service(authorization: str) -> ServiceToken | None:
    """The service whose bearer token this Authorization header carries, if valid."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = ServiceToken.objects.filter(
        token_sha256=_token_hash(token.strip()), revoked_at__isnull=True
    ).first()
    if row is not None:
        now = timezone.now()
        if row.last_used_at is None or row.last_used_at < now - timedelta(minutes=1):
            # At most once a minute: every batch updating one row would queue on its lock.
            ServiceToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row
