"""The API's periodic task: forget Idempotency-Key answers older than IDEMPOTENCY_HOURS."""

from __future__ import annotations

from celery import shared_task

from registry_ui.web.api import idempotency


# Pinned name, like every task's: beat schedules refer to it.
@shared_task(name="registry_ui.web.tasks.forget_idempotent_calls")
def forget_idempotent_calls() -> int:
    """Run by beat every hour; returns how many stored answers were deleted."""
    return idempotency.forget()
