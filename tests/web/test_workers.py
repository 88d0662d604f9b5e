"""Operations carried out by real Celery worker processes on Redis, against `mlflow server`.

These need a Redis server (REDIS_URL); CI always has one (.ci/run), so they run there.
"""

from __future__ import annotations

import os
import uuid

import pytest

from registry_ui.prompt_model import configure_mlflow_with_registry, get_registry
from registry_ui.registry import NewVersion
from registry_ui.web import operations
from registry_ui.web.models import Batch, Operation, TemplateVersion
from tests.support.workers import WorkerProcess, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis for real Celery workers: set REDIS_URL (CI does)",
    ),
]


@pytest.fixture
def worker_queue(settings):
    """A queue of this test's own, so no other run's messages reach its workers."""
    from registry_ui.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    previous = (app.conf.task_default_queue, app.conf.task_always_eager)
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    yield queue
    app.conf.task_default_queue, app.conf.task_always_eager = previous


@pytest.fixture
def start_worker(worker_queue, mlflow_server, tmp_path, mlflow_sqlite_uri):
    configure_mlflow_with_registry(mlflow_server.url)
    workers: list[WorkerProcess] = []

    def start(concurrency: int = 2) -> WorkerProcess:
        worker = WorkerProcess(
            queue=worker_queue,
            mlflow_uri=mlflow_server.url,
            log_path=tmp_path / f"worker-{len(workers)}.log",
            concurrency=concurrency,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
    configure_mlflow_with_registry(mlflow_sqlite_uri)


def batch_done(batch: Batch) -> bool:
    batch.refresh_from_db()
    return batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED)


def test_workers_register_a_batch_across_templates_exactly_once(start_worker, unique_name):
    start_worker()
    names = [unique_name(f"w{i}") for i in range(4)]
    versions = [
        NewVersion(name, f"1.{minor}.0", "Hi {who}" + " {x}" * minor, {"author": "alice"})
        for name in names
        for minor in range(3)
    ]

    batch = operations.batch_register(versions=versions, actor="alice", reason="worker test")
    wait_for(lambda: batch_done(batch), timeout=180, message="the batch to finish")

    errors = list(Operation.objects.filter(batch=batch, status="failed").values_list("last_error"))
    assert (batch.status, batch.succeeded, batch.total) == ("succeeded", 12, 12), errors
    in_mlflow = get_registry().gateway.list_versions_many(names)
    for name in names:
        assert [r.version for r in in_mlflow[name]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert TemplateVersion.objects.filter(template__name__in=names).count() == 12
    assert not Operation.objects.filter(batch=batch).exclude(status="succeeded").exists()
