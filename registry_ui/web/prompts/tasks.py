"""Celery tasks of the mirror: thin interfaces over registry_ui.web.prompts.mirror."""

from __future__ import annotations

from celery import shared_task

from registry_ui.core.errors import RegistryUnavailableError
from registry_ui.web.prompts.mirror import sync_changes, sync_one, sync_registry


@shared_task(
    name="registry_ui.web.tasks.sync_template",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def sync_template(name: str) -> int:
    """Mirror one template now (a webhook said it changed); returns the changes seen.

    Read in full and verified as by the full sweep (``mirror.sync_one``): tampered and
    deleted versions, and a deleted model, are marked, flagged and audited here too.
    """
    found = sync_one(name)
    return found["changes"] + found["tampered"] + found["deleted"]


@shared_task(name="registry_ui.web.tasks.sync_registry_task")
def sync_registry_task() -> dict[str, int]:
    return sync_registry()


@shared_task(name="registry_ui.web.tasks.sync_changes_task")
def sync_changes_task() -> dict[str, int]:
    """The periodic incremental pass (every SYNC_INTERVAL_SECONDS)."""
    return sync_changes()
