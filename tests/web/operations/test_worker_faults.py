"""Faults while real Celery workers carry out batches: killed workers, duplicate deliveries,
an MLflow server that goes away, sends that never left, and racing promotions.

Every test runs `celery worker` processes on Redis against a real `mlflow server`, with
the Django database the tests use (PostgreSQL in CI). The sweeper is called from the test
process where a test needs it, so nothing depends on Celery beat.

Locally:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m pytest tests/web/operations/test_worker_faults.py
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import mlflow
import pytest
from django.db import connection
from kombu.exceptions import OperationalError

from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import configure_mlflow_with_registry, get_registry
from registry_ui.registry import NewVersion
from registry_ui.web.models import AuditEvent, Batch, Operation, TemplateVersion
from registry_ui.web.operations import queue
from registry_ui.web.operations import tasks as operation_tasks
from tests.support.batches import progress, semver_counts, wait_for_batches
from tests.support.duplicating_worker import doubled
from tests.support.mlflow_server import MlflowServer, free_port
from tests.support.workers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis for real Celery workers: set REDIS_URL (CI does)",
    ),
]

# The smallest time limit settings accept: an operation running longer counts as stuck.
TIME_LIMIT = 10
SEND_GRACE = 2


def revisions(name: str, count: int, major: int = 1) -> list[NewVersion]:
    """``count`` versions of one template, each a minor bump of the one before."""
    return [
        NewVersion(name, f"{major}.{minor}.0", f"Hi {{who}}, revision {minor}.", {"author": "a"})
        for minor in range(count)
    ]


def expected_counts(count: int, major: int = 1) -> Counter:
    return Counter({f"{major}.{minor}.0": 1 for minor in range(count)})


def operations_of(*batches: Batch):
    return Operation.objects.filter(batch__in=batches)


def batch_status(batch: Batch) -> str:
    batch.refresh_from_db()
    return batch.status


def plain_client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def short_limits(settings) -> dict[str, str]:
    """A 10 s operation time limit and a 2 s send grace, here and in the workers' env."""
    settings.OPERATION_TIME_LIMIT_SECONDS = TIME_LIMIT
    settings.OPERATION_SEND_GRACE_SECONDS = SEND_GRACE
    return {
        "OPERATION_TIME_LIMIT_SECONDS": str(TIME_LIMIT),
        "OPERATION_SEND_GRACE_SECONDS": str(SEND_GRACE),
    }


# -- 1. a worker killed mid-batch -------------------------------------------------------------


def test_a_worker_killed_mid_batch_leaves_every_version_registered_exactly_once(
    start_worker, short_limits, mlflow_server, unique_name
):
    first = start_worker(extra_env=short_limits)
    names = [unique_name(f"k{i:02d}") for i in range(20)]
    batch = queue.batch_register(
        versions=[new for name in names for new in revisions(name, 10)],
        actor="alice",
        reason="killed worker",
    )
    assert batch.total == 200

    def under_way() -> bool:
        ops = operations_of(batch)
        return (
            ops.filter(status="succeeded").count() >= 30 and ops.filter(status="running").exists()
        )

    wait_for(
        under_way,
        timeout=120,
        message=lambda: f"30 operations done and one running; {progress([batch])}",
    )
    first.kill()
    interrupted = set(operations_of(batch).filter(status="running").values_list("id", flat=True))
    assert interrupted, "the SIGKILL should land while an operation runs"
    assert batch_status(batch) == Batch.Status.RUNNING

    start_worker(extra_env=short_limits)
    wait_for_batches(
        [batch], timeout=240, sweep_every=TIME_LIMIT, what="the batch after the worker was killed"
    )

    assert (batch.status, batch.succeeded, batch.failed) == ("succeeded", 200, 0), progress([batch])
    in_mlflow = semver_counts(mlflow_server.url, names)
    assert {name: in_mlflow[name] for name in names} == {
        name: expected_counts(10) for name in names
    }
    resumed = operations_of(batch).filter(id__in=interrupted)
    assert {(op.status, op.attempts >= 2) for op in resumed} == {("succeeded", True)}
    assert TemplateVersion.objects.filter(template__name__in=names).count() == 200


# -- 2. every message delivered twice ---------------------------------------------------------


def test_operations_delivered_twice_to_two_workers_write_and_move_each_version_once(
    start_worker, mlflow_server, monkeypatch, unique_name
):
    # Both workers send every operation twice, and so does this process.
    workers = [start_worker(duplicate_sends=True) for _ in range(2)]
    monkeypatch.setattr(
        operation_tasks, "send_after_commit", doubled(operation_tasks.send_after_commit)
    )
    names = [unique_name(f"d{i}") for i in range(5)]

    registration = queue.batch_register(
        versions=[new for name in names for new in revisions(name, 3)], actor="alice"
    )
    wait_for_batches([registration], timeout=120, what="the registration batch")
    moves = [
        (name, version, stage)
        for name in names
        for version in ("1.0.0", "1.1.0")
        for stage in ("staging", "production")
    ]
    transition = queue.batch_transition(moves=moves, actor="bob")
    wait_for_batches([transition], timeout=120, what="the transition batch")

    for batch in (registration, transition):
        assert (batch.status, batch.failed) == ("succeeded", 0), progress([batch])
    ops = list(operations_of(registration, transition))
    assert len(ops) == 15 + 20
    # Each operation was claimed once, though every message for it came twice: at least one
    # of its two found it taken (busy or skipped), whichever worker took it.
    assert Counter(op.attempts for op in ops) == Counter({1: 35})
    wait_for(
        lambda: sum(len(worker.task_results()) for worker in workers) >= 2 * 35,
        timeout=30,
        message="the workers to take every duplicate message",
    )
    assert all(worker.received() for worker in workers), "both workers should take messages"
    results = Counter(result for worker in workers for result in worker.task_results())
    assert results["busy"] + results["skipped"] >= 35, results

    # MLflow: one version per semver; the aliases and stage tags of one move each.
    assert semver_counts(mlflow_server.url, names) == {name: expected_counts(3) for name in names}
    client = plain_client(mlflow_server.url)
    for name in names:
        registered = to_registered_model_name(name)
        versions = {
            v.tags["registry_ui.version"]: v
            for v in client.search_model_versions(f"name = '{registered}'")
        }
        assert client.get_registered_model(registered).aliases == {
            "production": versions["1.1.0"].version
        }
        stages = {
            semver: (v.tags["registry_ui.stage"], v.current_stage) for semver, v in versions.items()
        }
        assert stages == {
            "1.0.0": ("archived", "Archived"),
            "1.1.0": ("production", "Production"),
            "1.2.0": ("dev", "None"),
        }

    # The audit trail: one event per operation, one per stage move.
    finished = Counter(
        AuditEvent.objects.filter(action="operation.succeeded").values_list("object_id", flat=True)
    )
    assert {str(op.id): finished[str(op.id)] for op in ops} == {str(op.id): 1 for op in ops}
    stage_moves = sorted(
        (event.object_id, event.before["stage"], event.after["stage"])
        for event in AuditEvent.objects.filter(
            action="version.stage_changed",
            object_id__in=[f"{name}@{v}" for name in names for v in ("1.0.0", "1.1.0", "1.2.0")],
        )
    )
    assert stage_moves == sorted(
        move
        for name in names
        for move in [
            (f"{name}@1.0.0", "dev", "staging"),
            (f"{name}@1.0.0", "staging", "production"),
            (f"{name}@1.0.0", "production", "archived"),
            (f"{name}@1.1.0", "dev", "staging"),
            (f"{name}@1.1.0", "staging", "production"),
        ]
    )


# -- 3. the MLflow server goes away and comes back --------------------------------------------


@pytest.fixture
def own_mlflow_server(tmp_path_factory):
    """An `mlflow server` of this test's own, which it may stop and start again."""
    root = tmp_path_factory.mktemp("mlflow-restarted")
    server = MlflowServer(root, free_port(), enable_jobs=False).start()
    yield server
    server.stop()


# Workers fail fast while the server is down: a short timeout (MLflow's own HTTP retries are
# always off) and a short backoff.
FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "OPERATION_RETRY_BASE_SECONDS": "1"}


def test_operations_retry_through_an_mlflow_server_restart_and_complete_exactly_once(
    start_worker, own_mlflow_server, unique_name
):
    server = own_mlflow_server
    configure_mlflow_with_registry(server.url)  # this process files the batch against it
    start_worker(mlflow_uri=server.url, extra_env=FAIL_FAST_HTTP)
    names = [unique_name(f"r{i}") for i in range(4)]
    batch = queue.batch_register(
        versions=[new for name in names for new in revisions(name, 8)], actor="alice"
    )

    # Killed as soon as a worker has claimed the batch's first operation. The whole batch takes
    # well under a second on two server workers, about as long as a graceful stop (which
    # serves the requests in flight), so waiting for recorded results and then stopping could
    # find it finished. A kill also cuts off requests in flight: a version MLflow wrote whose
    # answer never came back must be found by its operation id, not written again.
    wait_for(
        lambda: operations_of(batch).exclude(status="pending").exists(),
        timeout=120,
        interval=0.02,
        message=lambda: f"a worker to start on the batch; {progress([batch])}",
    )
    server.kill()
    stopped_with = operations_of(batch).filter(status="succeeded").count()
    assert stopped_with < 32, "the server should stop while the batch is under way"
    server.start()  # same port, same SQLite store; several seconds down
    # No sweeping: the tasks' own retries must carry the batch through.
    wait_for_batches([batch], timeout=240, what="the batch after the MLflow restart")

    assert (batch.status, batch.succeeded, batch.failed) == ("succeeded", 32, 0), progress([batch])
    retried = operations_of(batch).filter(attempts__gt=1).count()
    assert retried >= 1, "some operation should have met the stopped server and retried"
    assert semver_counts(server.url, names) == {name: expected_counts(8) for name in names}


# -- 4. the send after commit fails -----------------------------------------------------------


def test_operations_whose_send_failed_are_delivered_by_the_sweeper(
    start_worker, settings, monkeypatch, caplog, mlflow_server, unique_name
):
    settings.OPERATION_SEND_GRACE_SECONDS = 1
    start_worker()
    names = [unique_name(f"s{i}") for i in range(3)]

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(operation_tasks.run_operation, "delay", broker_down)
        batch = queue.batch_register(
            versions=[new for name in names for new in revisions(name, 2)], actor="alice"
        )

    assert caplog.text.count("could not send operation") == 6
    time.sleep(1.5)  # past the send grace; nothing has reached the worker
    assert set(operations_of(batch).values_list("status", "attempts")) == {("pending", 0)}
    assert operation_tasks.sweep_operations() == {"reset": 0, "sent": 6}
    # One sweep is enough: a task goes on with its template's following operations.
    wait_for_batches([batch], timeout=120, what="the swept batch")

    assert (batch.status, batch.succeeded) == ("succeeded", 6), progress([batch])
    assert semver_counts(mlflow_server.url, names) == {name: expected_counts(2) for name in names}


# -- 5. racing promotions of one template -----------------------------------------------------


def test_twenty_concurrent_promotions_leave_one_production_version_in_mlflow_and_the_mirror(
    start_worker, short_limits, mlflow_server, unique_name
):
    workers = [start_worker(extra_env=short_limits) for _ in range(2)]
    name = unique_name("p")
    records = get_registry().register_many(revisions(name, 20), actor="alice")
    versions = [result.record.version for result in records]
    assert len(versions) == 20

    batches: list[Batch] = []
    start_together = threading.Barrier(len(versions))

    def promote(version: str) -> None:
        try:
            start_together.wait(timeout=30)
            batches.append(
                queue.batch_transition(
                    moves=[(name, version, "staging"), (name, version, "production")],
                    actor=f"user-{version}",
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(version,)) for version in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(batches) == 20, "every promotion request should be filed"
    wait_for_batches(batches, timeout=180, sweep_every=3, what="the 20 promotions")

    ops = list(operations_of(*batches).order_by("finished_at"))
    refused = [op.last_error for op in ops if op.status == "failed"]
    assert all("cannot promote" in error for error in refused), refused
    promoted = [op for op in ops if op.status == "succeeded" and op.target_stage == "production"]
    assert promoted, "some promotion to production should succeed"

    # MLflow: the alias, the stage tag and the legacy stage name the same single version.
    client = plain_client(mlflow_server.url)
    registered = to_registered_model_name(name)
    in_mlflow = client.search_model_versions(f"name = '{registered}'")
    alias = client.get_registered_model(registered).aliases["production"]
    tagged = [v.version for v in in_mlflow if v.tags["registry_ui.stage"] == "production"]
    legacy = [v.version for v in in_mlflow if v.current_stage == "Production"]
    assert tagged == legacy == [alias]
    # The mirror agrees, version by version, and its production row is the last promoted.
    mirrored = TemplateVersion.objects.filter(template__name=name)
    production = [
        (row.version, row.mlflow_version) for row in mirrored if row.stage == "production"
    ]
    assert production == [(promoted[-1].version, alias)]
    stages_in_mlflow = {
        r.version: r.stage.value for r in get_registry().gateway.list_versions(name)
    }
    assert {row.version: row.stage for row in mirrored} == stages_in_mlflow
    # A task carrying out the template's queue hands it on before its hard time limit.
    killed = [
        line for w in workers for line in w.log(tail=None).splitlines() if "time limit" in line
    ]
    assert not killed, killed
