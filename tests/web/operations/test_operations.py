"""Batches of operations carried out against a real MLflow registry (SQLite store).

Tasks run in-process here (CELERY_TASK_ALWAYS_EAGER); tests/web/operations/test_workers.py
runs the same paths on real Celery worker processes over Redis.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry_ui.core.errors import BatchRegistrationError
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.registry import NewVersion
from registry_ui.web.models import AuditEvent, Batch, Operation, TemplateVersion
from registry_ui.web.operations import queue, worker
from registry_ui.web.operations import tasks as operation_tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


def new(name: str, version: str = "1.0.0", template: str = "Hi {who}") -> NewVersion:
    return NewVersion(name, version, template, {"author": "alice"})


def test_a_batch_registers_every_version_in_one_run_and_mirrors_them(unique_name):
    a, b = unique_name("a"), unique_name("b")

    batch = queue.batch_register(
        versions=[new(a), new(a, "1.1.0", "Hi {who} {when}"), new(b)], actor="alice", reason="r"
    )

    batch.refresh_from_db()
    assert (batch.status, batch.succeeded, batch.failed) == ("succeeded", 3, 0)
    assert set(Operation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        "succeeded"
    }
    records = get_registry().gateway.list_versions_many([a, b])
    assert [r.version for r in records[a]] == ["1.0.0", "1.1.0"]
    assert {r.run_id for rs in records.values() for r in rs} == {batch.run_id}
    mirrored = TemplateVersion.objects.filter(template__name=a).order_by("major", "minor")
    assert [(v.version, v.stage, v.variables) for v in mirrored] == [
        ("1.0.0", "dev", ["who"]),
        ("1.1.0", "dev", ["who", "when"]),
    ]


def test_re_running_a_batch_with_identical_versions_files_nothing(unique_name):
    name = unique_name()
    queue.batch_register(versions=[new(name)], actor="alice")

    again = queue.batch_register(versions=[new(name)], actor="alice")

    assert again is None
    assert len(get_registry().gateway.list_versions(name)) == 1


def test_a_refused_version_refuses_the_whole_batch_before_anything_is_written(unique_name):
    a, b = unique_name("a"), unique_name("b")
    PromptModel(a, "Hi {who} {when}", "1.0.0").register()

    with pytest.raises(BatchRegistrationError, match="removes variable 'when'"):
        queue.batch_register(versions=[new(b), new(a, "1.0.1")], actor="alice")

    assert Batch.objects.count() == 0
    assert get_registry().gateway.list_versions(b) == []


def test_re_running_an_operation_records_its_earlier_effect_instead_of_writing_again(
    unique_name,
):
    name = unique_name()
    batch = queue.batch_register(versions=[new(name)], actor="alice")
    operation = Operation.objects.get(batch=batch)
    # As if the worker died after MLflow's write and before recording it.
    Operation.objects.filter(id=operation.id).update(status="pending")

    outcome = worker.run(str(operation.id), send=operation_tasks.send_after_commit)

    assert outcome.status == "succeeded"
    assert len(get_registry().gateway.list_versions(name)) == 1
    assert Operation.objects.get(id=operation.id).attempts == 2


def test_a_claimed_operation_is_not_claimed_again():
    assert worker.claim("00000000-0000-0000-0000-000000000000") is None


def test_stage_moves_run_as_operations_and_are_mirrored_and_audited(unique_name):
    name = unique_name()
    PromptModel.register_many(
        [PromptModel(name, "Hi {who}", "1.0.0"), PromptModel(name, "Hey {who}", "1.0.1")]
    )

    queue.batch_transition(
        moves=[
            (name, "1.0.0", "staging"),
            (name, "1.0.0", "production"),
            (name, "1.0.1", "staging"),
        ],
        actor="bob",
    )

    stages = dict(
        TemplateVersion.objects.filter(template__name=name).values_list("version", "stage")
    )
    assert stages == {"1.0.0": "production", "1.0.1": "staging"}
    changes = [
        (e.object_id.split("@")[1], e.before["stage"], e.after["stage"], e.source, e.actor)
        for e in AuditEvent.objects.filter(
            object_id__startswith=f"{name}@", action="version.stage_changed"
        )
    ]
    assert changes == [
        ("1.0.0", "staging", "production", "worker", "bob"),
        ("1.0.1", "dev", "staging", "worker", "bob"),
    ]


def refused_move(name: str) -> Operation:
    """A dev version asked straight into production: the operation fails with the reason."""
    PromptModel(name, "Hi {who}", "1.0.0").register()
    batch = queue.batch_transition(moves=[(name, "1.0.0", "production")], actor="bob")
    return Operation.objects.get(batch=batch)


def test_a_refused_stage_move_fails_its_operation_with_the_reason(unique_name):
    operation = refused_move(unique_name())

    batch = operation.batch
    assert operation.status == "failed"
    assert "promote it to staging first" in operation.last_error
    batch.refresh_from_db()
    assert (batch.status, batch.failed) == ("failed", 1)


def test_failed_operations_can_be_retried_and_cancelled(unique_name):
    name = unique_name()
    operation = refused_move(name)
    batch = operation.batch
    PromptModel.load_from_registry(name, version="1.0.0").promote_to_staging()

    retried = queue.retry_failed([operation.id], actor="bob")

    operation.refresh_from_db()
    batch.refresh_from_db()
    assert retried == 1
    assert (operation.status, batch.status) == ("succeeded", "succeeded")
    assert queue.cancel_failed([operation.id], actor="bob") == 0


def test_the_operations_command_retries_with_command_as_the_audited_source(unique_name):
    name = unique_name()
    operation = refused_move(name)
    assert operation.status == "failed"
    PromptModel.load_from_registry(name, version="1.0.0").promote_to_staging()

    call_command("operations", "retry", str(operation.id), "--actor", "carol", stdout=StringIO())

    event = AuditEvent.objects.get(action="operation.retried", object_id=str(operation.id))
    assert (event.actor, event.source) == ("carol", "command")
    operation.refresh_from_db()
    assert operation.status == "succeeded"


def test_the_sweeper_sends_operations_whose_send_was_lost(unique_name, settings, monkeypatch):
    settings.OPERATION_SEND_GRACE_SECONDS = 0
    name = unique_name()
    monkeypatch.setattr(operation_tasks, "send_after_commit", lambda ids: None)  # the lost send
    batch = queue.batch_register(versions=[new(name)], actor="alice")
    assert Operation.objects.get(batch=batch).status == "pending"
    monkeypatch.undo()

    swept = operation_tasks.sweep_operations()

    assert swept["sent"] >= 1
    assert Operation.objects.get(batch=batch).status == "succeeded"


def test_a_batch_sends_every_templates_first_operation_before_the_following_ones(
    unique_name, monkeypatch
):
    a, b = unique_name("a"), unique_name("b")
    sent = []
    monkeypatch.setattr(operation_tasks, "send_after_commit", sent.extend)

    batch = queue.batch_register(
        versions=[new(a), new(a, "1.1.0", "Hi {who} {when}"), new(b)], actor="alice"
    )

    filed = {op.id: (op.template_name, op.version) for op in Operation.objects.filter(batch=batch)}
    assert [filed[operation_id] for operation_id in sent] == [
        (a, "1.0.0"),
        (b, "1.0.0"),
        (a, "1.1.0"),
    ]


def test_a_templates_registrations_are_written_one_by_one_and_recorded_together(
    unique_name, monkeypatch, django_assert_max_num_queries
):
    name = unique_name()
    monkeypatch.setattr(operation_tasks, "send_after_commit", lambda ids: None)
    batch = queue.batch_register(
        versions=[new(name, f"1.{minor}.0", "Hi {who}" + " {x}" * minor) for minor in range(6)],
        actor="alice",
    )
    first = Operation.objects.get(batch=batch, position=0)

    # Claim, take the other five, then one transaction for the mirror, results and audit
    # (39 statements on PostgreSQL; one transaction per step took about 25 per version).
    with django_assert_max_num_queries(45):
        outcome = worker.run(str(first.id), send=operation_tasks.send_after_commit)

    assert outcome.status == "succeeded"
    assert [r.version for r in get_registry().gateway.list_versions(name)] == [
        f"1.{minor}.0" for minor in range(6)
    ]
    assert set(Operation.objects.filter(batch=batch).values_list("status", "attempts")) == {
        ("succeeded", 1)
    }
    batch.refresh_from_db()
    assert (batch.status, batch.succeeded) == ("succeeded", 6)
    assert AuditEvent.objects.filter(action="operation.succeeded", object_id__in=[
        str(op_id) for op_id in Operation.objects.filter(batch=batch).values_list("id", flat=True)
    ]).count() == 6  # fmt: skip
    assert TemplateVersion.objects.filter(template__name=name).count() == 6


def test_a_pending_operation_taken_with_its_templates_running_one_is_not_cancelled(
    unique_name, monkeypatch
):
    name = unique_name()
    monkeypatch.setattr(operation_tasks, "send_after_commit", lambda ids: None)
    batch = queue.batch_register(
        versions=[new(name), new(name, "1.1.0", "Hi {who} {when}")], actor="alice"
    )
    running, taken = Operation.objects.filter(batch=batch).order_by("position")
    now = timezone.now()
    Operation.objects.filter(id=running.id).update(status="running", started_at=now)
    Operation.objects.filter(id=taken.id).update(attempts=1, started_at=now)

    assert queue.cancel_failed([taken.id], actor="bob") == 0

    Operation.objects.filter(id=running.id).update(status="failed")
    assert queue.cancel_failed([taken.id], actor="bob") == 1


def test_a_new_templates_batch_costs_one_mlflow_create_per_version_and_little_else(unique_name):
    """The plan reads contents only (no stages), a brand-new template's model is made sure
    of without a version search, and idempotency costs nothing on a first attempt."""
    # The registration runs' experiment is looked up once per process: not counted below.
    queue.batch_register(versions=[new(unique_name("warm"))], actor="alice")
    gateway = get_registry().gateway
    name = unique_name()
    before = gateway.calls

    batch = queue.batch_register(
        versions=[new(name, f"1.{minor}.0", "Hi {who}" + "!" * minor) for minor in range(4)],
        actor="alice",
    )

    batch.refresh_from_db()
    assert (batch.status, batch.succeeded) == ("succeeded", 4)
    # 1 plan search + 1 name check + 1 model creation + 1 batch run + 4 version creations
    assert gateway.calls - before == 8
