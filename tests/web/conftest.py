from __future__ import annotations

import uuid

import pytest

from registry_ui.prompt_model import configure_mlflow_with_registry
from tests.support.workers import WorkerProcess


@pytest.fixture
def in_process_tasks():
    """Run Celery tasks inline in this process, even when REDIS_URL is set (as in CI)."""
    from registry_ui.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


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
    # Messages left over (duplicates, the sweeper's re-sends) would stay in Redis for good.
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


@pytest.fixture
def start_worker(worker_queue, mlflow_server, tmp_path, mlflow_sqlite_uri):
    """Start real `celery worker` processes on this test's queue; all stopped afterwards.

    They talk to the session's `mlflow server` unless given another ``mlflow_uri``; this
    process is pointed at the same server, so tests read what the workers wrote.
    """
    configure_mlflow_with_registry(mlflow_server.url)
    workers: list[WorkerProcess] = []

    def start(
        concurrency: int = 2,
        *,
        mlflow_uri: str | None = None,
        extra_env: dict[str, str] | None = None,
        duplicate_sends: bool = False,
    ) -> WorkerProcess:
        worker = WorkerProcess(
            queue=worker_queue,
            mlflow_uri=mlflow_uri or mlflow_server.url,
            log_path=tmp_path / f"worker-{len(workers)}.log",
            concurrency=concurrency,
            extra_env=extra_env,
            duplicate_sends=duplicate_sends,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
    configure_mlflow_with_registry(mlflow_sqlite_uri)
