"""The audit trail's periodic task: publish the chain's head outside the database."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from registry_ui.web.audit import heads


# Pinned name, like every task's: beat schedules refer to it.
@shared_task(name="registry_ui.web.tasks.publish_audit_head")
def publish_audit_head() -> int | None:
    """Append the head to AUDIT_HEAD_FILE (run by beat every AUDIT_HEAD_EXPORT_SECONDS)."""
    if not settings.AUDIT_HEAD_FILE:
        return None  # the deploy check (registry_web.W001) says so
    head = heads.publish_head(settings.AUDIT_HEAD_FILE)
    return head.seq if head else None
