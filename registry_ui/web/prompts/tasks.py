"""Celery tasks of the mirror: thin interfaces over registry_ui.web.prompts.mirror."""

from __future__ import annotations

from celery import shared_task

from registry_ui.core.errors import RegistryUnavailableError
from registry_ui.prompt_model import get_registry
from registry_ui.web.models import AuditEvent
from registry_ui.web.prompts.mirror import mirror_template, sync_registry, verify_template
from registry_ui.web.prompts.watch import watch_stage_holders


@shared_task(
    name="registry_ui.web.tasks.sync_template",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def sync_template(name: str) -> int:
    """Mirror one template now (a webhook said it changed); returns the changes seen."""
    records = get_registry().gateway.list_versions(name)
    changes = (
        len(mirror_template(name, records, source=AuditEvent.Source.EXTERNAL)) if records else 0
    )
    found = verify_template(name, records, complete=True)  # tampered or deleted versions
    return changes + found["tampered"] + found["deleted"]


@shared_task(name="registry_ui.web.tasks.sync_registry_task")
def sync_registry_task() -> dict[str, int]:
    return sync_registry()


@shared_task(name="registry_ui.web.tasks.watch_stage_holders")
def watch_stage_holders_task() -> dict[str, int]:
    """Beat, every HOLDER_WATCH_SECONDS: staging and production versions deleted in MLflow."""
    return watch_stage_holders(send=sync_template.delay)
