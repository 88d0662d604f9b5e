"""Celery tasks of the mirror: thin interfaces over registry_ui.web.prompts.mirror."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from registry_ui.core.errors import RegistryUnavailableError
from registry_ui.web.prompts.mirror import sync_changes, sync_one, sync_registry
from registry_ui.web.prompts.watch import watch_stage_holders

_PASS_RUNNING = "registry_ui:sync_changes:running"
# Longer than any pass: a worker killed mid-pass holds the lock no longer than this.
_PASS_LOCK_SECONDS = 600


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


@shared_task(
    name="registry_ui.web.tasks.sync_native_prompt",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def sync_native_prompt(name: str) -> dict[str, int]:
    """Mirror one native prompt now and check its governed aliases (a prompt webhook)."""
    from registry_ui.web.prompts.native import sync_native_prompts

    return sync_native_prompts(name=name)


@shared_task(
    name="registry_ui.web.tasks.publish_native_template",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def publish_native_template(name: str) -> str:
    """After the mirror added versions, or a move the workers carried out: the template's
    native prompt brought in step (every version published, the aliases moved). A refusal or a
    failure never touches the move: it is logged and audited, and the next sync tries again."""
    from registry_ui.web.prompts.native import publish_template

    return publish_template(name)


def publish_after_new_versions(sender, *, name: str, rows, **kwargs) -> None:
    """Receives signals.versions_added (connected in apps.py): a template chosen for
    publishing has its new versions published once the mirror's transaction commits."""
    from registry_ui.web.prompts.native import publishing_wanted

    if publishing_wanted(name, rows):
        transaction.on_commit(lambda: publish_native_template.delay(name))


@shared_task(
    name="registry_ui.web.tasks.move_native_alias",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def move_native_alias(request_id: int) -> str:
    """Carry out an approved move of a native prompt's governed alias; safe to re-run."""
    from registry_ui.web.prompts.native import execute_alias_request

    return execute_alias_request(request_id).state


@shared_task(name="registry_ui.web.tasks.sync_registry_task")
def sync_registry_task() -> dict[str, int]:
    """The full sweep (every SYNC_FULL_SWEEP_SECONDS)."""
    return sync_registry()


@shared_task(name="registry_ui.web.tasks.sync_changes_task")
def sync_changes_task() -> dict[str, int]:
    """The periodic incremental pass (every SYNC_INTERVAL_SECONDS), one at a time: a pass
    still running when beat sends the next makes that one return at once."""
    if not cache.add(_PASS_RUNNING, True, timeout=_PASS_LOCK_SECONDS):
        return {"skipped": 1}
    try:
        return sync_changes()
    finally:
        cache.delete(_PASS_RUNNING)


@shared_task(name="registry_ui.web.tasks.watch_stage_holders")
def watch_stage_holders_task() -> dict[str, int]:
    """Beat, every HOLDER_WATCH_SECONDS: staging and production versions deleted in MLflow."""
    return watch_stage_holders(send=sync_template.delay)
