"""Retries with real backoff and a real cap, counted on the operation's row; leases.

MLflow is a closed loopback port here (nothing listens): every call fails at once as a
transient error, which is the path an MLflow outage takes. Tasks run in-process.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry_ui.prompt_model import configure_mlflow_with_registry
from registry_ui.registry import NewVersion
from registry_ui.web.models import Operation
from registry_ui.web.operations import queue, sweeper, worker
from registry_ui.web.operations import tasks as operation_tasks
from tests.support.mlflow_server import free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]


@pytest.fixture
def mlflow_down(mlflow_sqlite_uri):
    configure_mlflow_with_registry(f"http://127.0.0.1:{free_port()}")
    yield
    configure_mlflow_with_registry(mlflow_sqlite_uri)


@pytest.fixture
def filed(unique_name, monkeypatch, settings):
    """One pending registration, its first message held back (the test sends it)."""
    settings.OPERATION_RETRY_BASE_SECONDS = 5
    settings.OPERATION_RETRY_MAX_SECONDS = 300
    settings.OPERATION_MAX_RETRIES = 4
    sent = []

    def send_after_commit(ids, countdown=None):
        sent.append((list(ids), countdown))

    monkeypatch.setattr(operation_tasks, "send_after_commit", send_after_commit)
    name = unique_name()
    batch = queue.batch_register(
        versions=[NewVersion(name, "1.0.0", "Hi {who}", {"author": "alice"})],
        actor="alice",
        against_mirror=True,  # filing makes no MLflow call
    )
    return Operation.objects.get(batch=batch), sent


def make_due(operation: Operation) -> None:
    Operation.objects.filter(id=operation.id).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_transient_failure_waits_out_a_growing_backoff_counted_on_the_row(mlflow_down, filed):
    operation, _ = filed
    pauses = []
    for attempt in (1, 2, 3):
        outcome = worker.run(str(operation.id), send=lambda ids, countdown=None: None)
        ended = timezone.now()
        operation.refresh_from_db()
        assert outcome.status == "retry"
        assert (operation.status, operation.attempts) == ("pending", attempt)
        assert "127.0.0.1" in operation.last_error
        pauses.append((operation.next_attempt_at - ended).total_seconds())
        # Not due yet: a message arriving early (a duplicate, the sweeper) does nothing.
        assert worker.run(str(operation.id), send=lambda ids, countdown=None: None).status == (
            "skipped"
        )
        operation.refresh_from_db()
        assert operation.attempts == attempt
        make_due(operation)

    # 5 s, 10 s, 20 s, each +-20%.
    for pause, base in zip(pauses, (5, 10, 20), strict=True):
        assert 0.8 * base - 0.5 <= pause <= 1.2 * base


def test_after_the_last_attempt_the_operation_fails_with_its_last_error(mlflow_down, filed):
    operation, _ = filed
    for _ in range(4):
        make_due(operation)
        worker.run(str(operation.id), send=lambda ids, countdown=None: None)

    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == ("failed", 4)
    assert operation.last_error.startswith("gave up after 4 attempts; the last error:")
    # The retry button puts it back in the queue.
    assert queue.retry_failed([str(operation.id)], actor="alice") == 1


def test_the_task_sends_the_retry_for_when_it_is_due(mlflow_down, filed):
    operation, sent = filed
    sent.clear()  # the filing's own send

    operation_tasks.run_operation(str(operation.id))

    [(ids, countdown)] = sent
    assert ids == [str(operation.id)]
    assert 4 <= countdown <= 6


def test_the_sweeper_sends_only_operations_that_are_due(mlflow_down, filed):
    operation, _ = filed
    worker.run(str(operation.id), send=lambda ids, countdown=None: None)  # now backing off
    swept = []

    sweeper.sweep(send=swept.extend)
    assert operation.id not in swept

    make_due(operation)
    sweeper.sweep(send=swept.extend)
    assert operation.id in swept


def test_an_operation_whose_lease_ran_out_is_taken_back_and_its_old_worker_cannot_finish_it(
    filed,
):
    operation, _ = filed
    claimed = worker.claim(str(operation.id))
    assert claimed.lease_expires_at > timezone.now()
    Operation.objects.filter(id=operation.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    result = sweeper.sweep(send=lambda ids: None)

    operation.refresh_from_db()
    assert result["reset"] == 1
    assert operation.status == "pending"
    assert "stopped renewing its lease" in operation.last_error
    retaken = worker.claim(str(operation.id))
    assert retaken.attempts == 2
    # The first worker wakes up and tries to finish: its attempt is no longer the row's.
    worker.finish(claimed, status=Operation.Status.SUCCEEDED, result={})
    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == ("running", 2)
