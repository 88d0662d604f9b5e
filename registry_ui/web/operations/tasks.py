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
from django.db import transaction

from registry_ui.web.operations import sweeper, worker

logger = logging.getLogger("registry_ui.operations")


def send_after_commit(operation_ids: Sequence[uuid.UUID], countdown: float | None = None) -> None:
    """Queue a task per operation once the transaction commits (now, outside one).

    ``countdown``: not before this many seconds (a retry waiting out its backoff).
    """

    def send() -> None:
        for operation_id in operation_ids:
            try:
                _send(str(operation_id), countdown)
            except Exception:  # the broker is down: the sweeper sends it later
                logger.exception("could not send operation %s; the sweeper will", operation_id)

    transaction.on_commit(send)


def send_now(operation_ids: Sequence[uuid.UUID], countdown: float | None = None) -> None:
    for operation_id in operation_ids:
        _send(str(operation_id), countdown)


def _send(operation_id: str, countdown: float | None) -> None:
    if countdown is None:
        run_operation.delay(operation_id)
    else:
        run_operation.apply_async((operation_id,), countdown=countdown)


@shared_task(
    name="registry_ui.web.tasks.run_operation",
    acks_late=True,  # safe: running an operation twice records its first effect
    reject_on_worker_lost=True,
)
def run_operation(operation_id: str) -> str:
    """Carry out an operation. Retries are counted on the operation's row, not here: a
    transient failure gives it back due after its backoff, and this task is sent again
    for then (the sweeper sends it too, if this message is lost)."""
    outcome = worker.run(operation_id, send=send_after_commit)
    if outcome.status == "retry":
        send_after_commit([operation_id], countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="registry_ui.web.tasks.sweep_operations")
def sweep_operations() -> dict[str, int]:
    return sweeper.sweep(send=send_now)
