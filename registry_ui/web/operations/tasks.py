"""Celery tasks of the operations: thin interfaces over the worker and the sweeper.

Services queue operations through send_after_commit; the tasks hand the worker and the
sweeper the senders they queue follow-up operations with, so neither imports this module.
Task names are pinned: beat schedules and messages already queued in Redis name them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import transaction

from registry_ui.web.operations import sweeper, worker

logger = logging.getLogger("registry_ui.operations")


def send_after_commit(operation_ids: Sequence[uuid.UUID]) -> None:
    """Queue a task per operation once the transaction commits (now, outside one)."""

    def send() -> None:
        for operation_id in operation_ids:
            try:
                run_operation.delay(str(operation_id))
            except Exception:  # the broker is down: the sweeper sends it later
                logger.exception("could not send operation %s; the sweeper will", operation_id)

    transaction.on_commit(send)


def send_now(operation_ids: Sequence[uuid.UUID]) -> None:
    for operation_id in operation_ids:
        run_operation.delay(str(operation_id))


@shared_task(
    name="registry_ui.web.tasks.run_operation",
    bind=True,
    acks_late=True,  # safe: running an operation twice records its first effect
    reject_on_worker_lost=True,
    max_retries=None,  # bounded below, by our own count of transient failures
)
def run_operation(self, operation_id: str) -> str:
    outcome = worker.run(operation_id, send=send_after_commit)
    if outcome.status == "retry":
        if self.request.retries >= settings.OPERATION_MAX_RETRIES:
            worker.give_up(operation_id, error=outcome.detail)
            return "failed"
        raise self.retry(countdown=_backoff(self.request.retries), max_retries=None)
    return outcome.status


@shared_task(name="registry_ui.web.tasks.sweep_operations")
def sweep_operations() -> dict[str, int]:
    return sweeper.sweep(send=send_now)


def _backoff(retries: int) -> float:
    # Celery's own exponential backoff with full jitter, capped at a minute.
    return get_exponential_backoff_interval(factor=1, retries=retries, maximum=60, full_jitter=True)
