"""The keys of the audit chain's HMAC, and the system checks that make production set one.

Each event's hash is an HMAC-SHA256 keyed with AUDIT_HMAC_KEY. The key lives in the
environment, never in the database, so someone who can only write the database cannot
recompute the chain after changing a row: the next ``verify_audit_log`` names the row.

Every event records the id of the key that hashed it (``AuditEvent.key_id``), derived from
the key itself so an id can never be paired with the wrong key. Rotation is adding a key:
set AUDIT_HMAC_KEY to the new one and put the old one in AUDIT_HMAC_OLD_KEYS, which only
verifies (docs/security.md, "Rotate the audit key").
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

# Shorter keys are refused in production (registry_web.E002): 32 characters of
# secrets.token_urlsafe() carry 192 bits.
MIN_KEY_LENGTH = 32
_KEY_ID_LABEL = b"registry_ui audit key id"
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


@dataclass(frozen=True)
class Key:
    id: str
    secret: bytes


def key_id(key: str) -> str:
    """A key's public name: the first 16 hex digits of an HMAC of a fixed label under it."""
    return hmac.new(key.encode(), _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def signing_key() -> Key:
    """The key new events are hashed with (AUDIT_HMAC_KEY)."""
    key = settings.AUDIT_HMAC_KEY
    if not key:
        raise ImproperlyConfigured(
            "AUDIT_HMAC_KEY is not set, so no audit event can be written: set it to a "
            f"random value of at least {MIN_KEY_LENGTH} characters, e.g. from {MAKE_A_KEY}"
        )
    return Key(key_id(key), key.encode())


def verification_keys() -> dict[str, bytes]:
    """Every key an event may have been hashed with, by id: the current one and the old ones."""
    keys = [settings.AUDIT_HMAC_KEY, *settings.AUDIT_HMAC_OLD_KEYS]
    return {key_id(key): key.encode() for key in keys if key}


# -- system checks (registered by apps.py) ------------------------------------------------------


@checks.register(checks.Tags.security)
def check_audit_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    key = settings.AUDIT_HMAC_KEY
    production = not settings.DEBUG
    where = "docs/security.md, 'Audit trail integrity'"
    if not key:
        # Only reachable with DEBUG off: settings.py derives a development key otherwise.
        return [
            checks.Error(
                "AUDIT_HMAC_KEY is not set: audit events cannot be written.",
                hint=f"Set it to the output of {MAKE_A_KEY}, kept outside the database ({where}).",
                id="registry_web.E001",
            )
        ]
    problems: list[checks.CheckMessage] = []
    level = checks.Error if production else checks.Warning
    if len(key) < MIN_KEY_LENGTH:
        problems.append(
            level(
                f"AUDIT_HMAC_KEY has {len(key)} characters: anyone with the database could "
                "guess it and rewrite the audit trail so that it still checks out.",
                hint=f"Use at least {MIN_KEY_LENGTH} random characters, e.g. from {MAKE_A_KEY}; "
                f"keep the old key in AUDIT_HMAC_OLD_KEYS ({where}).",
                id="registry_web.E002" if production else "registry_web.W002",
            )
        )
    if production and key == settings.SECRET_KEY:
        problems.append(
            checks.Error(
                "AUDIT_HMAC_KEY is the same as SECRET_KEY.",
                hint="Give the audit chain a key of its own, so either can be rotated alone.",
                id="registry_web.E003",
            )
        )
    return problems


@checks.register(checks.Tags.security, deploy=True)
def check_audit_head_file(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.AUDIT_HEAD_FILE:
        return []
    return [
        checks.Warning(
            "AUDIT_HEAD_FILE is not set: the audit chain's head is only logged, so removing "
            "the newest events or emptying the trail would not be noticed by "
            "verify_audit_log.",
            hint="Point it at a file on a volume the database's owner cannot write "
            "(docs/security.md, 'Audit trail integrity').",
            id="registry_web.W001",
        )
    ]
