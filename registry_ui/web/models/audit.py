"""The append-only, hash-chained audit trail."""

from __future__ import annotations

from django.db import connection, models
from django.db.models import Q


class AppendOnlyError(Exception):
    """An attempt to change or delete audit events: they are only ever appended."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be updated: the audit trail is append-only")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted: the audit trail is append-only")


class AuditEvent(models.Model):
    """Append-only and hash-chained: written only by registry_ui.web.audit.trail.record_many().

    Each event stores the hash of the one before it (in ``seq`` order), so an edited,
    inserted or removed row breaks the chain; ``manage.py verify_audit_log`` finds it. The
    hash is an HMAC keyed with AUDIT_HMAC_KEY, which the database does not hold, so nobody
    with only the database can rewrite the chain and make it check out again; ``key_id``
    names the key (empty: an event chained before keys, a plain SHA-256). On PostgreSQL
    triggers refuse UPDATE and DELETE (migration 0002) and TRUNCATE (0007).
    """

    class Source(models.TextChoices):
        DASHBOARD = "dashboard"
        WORKER = "worker"
        EXTERNAL = "external"
        COMMAND = "command"
        API = "api", "API"  # a call of the HTTP API, with a token (its api.call event names it)

    seq = models.PositiveBigIntegerField(unique=True)  # the chain order: 1, 2, 3, ...
    at = models.DateTimeField(db_index=True)  # set by record_many() before hashing
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=250)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # Which AUDIT_HMAC_KEY keyed `hash` (registry_ui.web.audit.keys.key_id); "" for events
    # written before the chain had a key, hashed with plain SHA-256.
    key_id = models.CharField(max_length=32, blank=True, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        permissions = [("export_auditevent", "Can export the audit trail")]
        indexes = [
            # audit.production_history(): a template's version events, found by the
            # "name@" prefix of object_id (LIKE 'name@%' needs the pattern opclass).
            models.Index(
                fields=["object_id"],
                name="audit_version_events",
                condition=Q(object_type="template_version"),
                opclasses=["varchar_pattern_ops"],
            ),
            # audit.production_history(): the few executed requests among all events.
            models.Index(
                fields=["seq"],
                name="audit_executed_requests",
                condition=Q(action="request.executed"),
            ),
            # The template page's lineage: its own requests' events, by request id.
            models.Index(
                fields=["object_id"],
                name="audit_request_events",
                condition=Q(object_type="promotion_request"),
            ),
            # A native prompt's page: its lineage, the events about that prompt.
            models.Index(
                fields=["object_id", "seq"],
                name="audit_native_prompt_events",
                condition=Q(object_type="native_prompt"),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed: the audit trail is append-only")
        if not self.hash:
            raise AppendOnlyError(
                "audit events are written by registry_ui.web.audit.trail.record() or "
                "record_many(), which chain them"
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted: the audit trail is append-only")


def starts_with(field: str, prefix: str) -> Q:
    """``field`` starts with ``prefix``, in a form the database's index on it serves.

    PostgreSQL's pattern-ops index serves LIKE 'prefix%'. SQLite's LIKE ignores case, so no
    index serves it and every row of the table is read; its indexes are in byte order, in
    which a range from the prefix up to the prefix with its last character incremented is
    exactly the prefixed values.
    """
    if connection.vendor != "sqlite" or not prefix:
        return Q(**{f"{field}__startswith": prefix})
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": upper})
