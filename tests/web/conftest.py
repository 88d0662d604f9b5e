"""Tests of the Django app, laid out as registry_ui/web is: one folder per domain (prompts/,
operations/, reviews/, checks/, experiments/, audit/, auth/); here, at the top, the tests of
what spans every domain (URL permissions, security, settings, admin, healthz, query counts,
the demo data). The fixtures below serve them all: the cast of users, and Celery.
"""

from __future__ import annotations

import uuid

import pytest

from registry_ui.prompt_model import configure_mlflow_with_registry
from registry_ui.web.auth.roles import ANALYSTS, AUTHORS, REVIEWERS
from tests.support.users import member, superuser
from tests.support.workers import WorkerProcess

# -- the cast ----------------------------------------------------------------------------------
# One user per fixture, made when a test asks for it, so that a test has only the people it
# names (who gets an email, who may still approve, depends on who exists). No passwords:
# tests sign in with force_login. A file that needs someone else makes them with
# tests.support.users.member.


@pytest.fixture
def alice(db):
    """An author: writes versions."""
    return member("alice", AUTHORS)


@pytest.fixture
def erin(db):
    """An author who files the requests (so she is not the versions' author)."""
    return member("erin", AUTHORS)


@pytest.fixture
def bob(db):
    """A reviewer."""
    return member("bob", REVIEWERS)


@pytest.fixture
def carol(db):
    """A second reviewer: production needs two."""
    return member("carol", REVIEWERS)


@pytest.fixture
def dave(db):
    """An analyst: reads metrics and defines experiments, may not change templates."""
    return member("dave", ANALYSTS)


@pytest.fixture
def rita(db):
    """An author and a reviewer: files requests, and reviews others' but never her own."""
    return member("rita", AUTHORS, REVIEWERS)


@pytest.fixture
def root(db):
    """The administrator: a superuser, in the admins group."""
    return superuser("root")


@pytest.fixture
def reader(db):
    """Signed in, in no group: may read every page and change nothing."""
    return member("reader")


# -- Celery --------------------------------------------------------------------------------------


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
