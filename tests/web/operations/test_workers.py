"""Operations carried out by real Celery worker processes on Redis, against `mlflow server`.

These need a Redis server (REDIS_URL); CI always has one (.ci/run), so they run there.
"""

from __future__ import annotations

import os

import pytest

from registry_ui.prompt_model import get_registry
from registry_ui.registry import NewVersion
from registry_ui.web.models import Batch, Operation, TemplateVersion
from registry_ui.web.operations import queue
from tests.support.workers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis for real Celery workers: set REDIS_URL (CI does)",
    ),
]


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

    batch = queue.batch_register(versions=versions, actor="alice", reason="worker test")
    wait_for(lambda: batch_done(batch), timeout=180, message="the batch to finish")

    errors = list(Operation.objects.filter(batch=batch, status="failed").values_list("last_error"))
    assert (batch.status, batch.succeeded, batch.total) == ("succeeded", 12, 12), errors
    in_mlflow = get_registry().gateway.list_versions_many(names)
    for name in names:
        assert [r.version for r in in_mlflow[name]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert TemplateVersion.objects.filter(template__name__in=names).count() == 12
    assert not Operation.objects.filter(batch=batch).exclude(status="succeeded").exists()
