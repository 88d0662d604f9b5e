"""Stage moves that converge: an interrupted move is finished by its re-run, an alias
moved by someone else is never overwritten, a duplicated version never gets an alias, and
the sync puts stage marks back in step (docs/mlflow-contract.md, "Stage moves").

A real MLflow registry (SQLite store), tasks in-process. An interruption is made here by
stopping between the worker's own steps (claim, plan, each MLflow write) and letting the
lease run out, at every write boundary; tests/web/operations/test_stage_move_faults.py
kills real Celery workers at those points over HTTP.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from django.utils import timezone
from mlflow import MlflowClient

from registry_ui.core.names import to_registered_model_name
from registry_ui.core.stages import ModelStage
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.audit.trail import verify_chain
from registry_ui.web.models import (
    AuditEvent,
    Operation,
    PromotionRequest,
    TemplateFlag,
    TemplateVersion,
)
from registry_ui.web.operations import sweeper, worker
from registry_ui.web.prompts.mirror import mirror_template, sync_registry
from registry_ui.web.reviews import services as reviews

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.fixture
def held(monkeypatch):
    """Approved requests' messages held back: the test runs the worker itself."""
    from registry_ui.web.operations.tasks import run_operation

    messages = []
    monkeypatch.setattr(run_operation, "delay", messages.append)
    return messages


def plain_client() -> MlflowClient:
    """Another program on the same MLflow: MLflow's own client, no registry_ui."""
    return get_registry().gateway.client


def template(name, texts, stages=()):
    models = [
        PromptModel(name, text, f"1.0.{i}", metadata={"author": "alice"})
        for i, text in enumerate(texts)
    ]
    PromptModel.register_many(models)
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    for version, target in stages:
        get_registry().promote(name, version, target)
        # Setting up a history, as the workers would have made it: not an outside change.
        mirror_template(name, get_registry().gateway.list_versions(name), source="worker")


def approved(users, name, version, target, held):
    request = reviews.file_request(
        users["erin"], template_name=name, version=version, target=target, justification="j"
    )
    for reviewer in ("bob", "carol")[: request.required_approvals]:
        reviews.approve(users[reviewer], request.pk)
    return request, held[-1]


@pytest.fixture
def users(erin, bob, carol):
    return {u.username: u for u in (erin, bob, carol)}


def invariants(name: str) -> dict:
    """What must hold after any stage move, interrupted or not."""
    registered = to_registered_model_name(name)
    client = plain_client()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        versions = client.search_model_versions(f"name = '{registered}'")
        legacy_production = client.get_latest_versions(registered, stages=["Production"])
    records = get_registry().gateway.list_versions(name)
    holders = {alias: r.version for r in records for alias in r.aliases}
    for v in versions:
        record = next(r for r in records if r.mlflow_version == str(v.version))
        assert v.tags["registry_ui.stage"] == record.stage.value, (v.version, v.tags)
        assert v.current_stage == record.stage.legacy_name, (v.version, v.current_stage)
    if "production" in holders:
        assert [v.tags["registry_ui.version"] for v in legacy_production] == [holders["production"]]
    mirrored = dict(
        TemplateVersion.objects.filter(template__name=name).values_list("version", "stage")
    )
    assert mirrored == {r.version: r.stage.value for r in records}
    assert not Operation.objects.filter(status__in=["pending", "running"]).exists()
    assert verify_chain().problem is None
    return holders


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def external_moves_since(seq: int, name: str):
    """Stage changes audited as made outside registry_ui (setting a test up makes some)."""
    return AuditEvent.objects.filter(
        seq__gt=seq,
        source="external",
        action="version.stage_changed",
        object_id__startswith=f"{name}@",
    )


def interrupt_after(operation_id: str, writes: int) -> None:
    """Run the worker's first steps of a stage move by hand, stopping after ``writes``
    MLflow writes, as a worker killed there would; its lease then runs out."""
    operation = worker.claim(operation_id)
    registry = get_registry()
    intent = worker._intent_of(operation, registry)
    done = 0
    name = intent.template
    for step in intent.steps:
        if done == writes:
            break
        if step.after is None:
            registry.gateway.delete_alias(name, step.alias)
        else:
            registry.gateway.set_alias(name, step.alias, step.after)
        done += 1
    marks = registry.gateway.stage_marks(name)
    for number, stage in sorted(intent.stages_after.items()):
        tag, legacy = marks[number]
        target = ModelStage.parse(stage)
        if done < writes and tag != target.value:  # the tag, then the legacy stage
            registry.gateway.write_stage_marks(
                name, number, target, tag=tag, legacy=target.legacy_name
            )
            done += 1
        if done < writes and legacy != target.legacy_name:
            registry.gateway.write_stage_marks(
                name, number, target, tag=target.value, legacy=legacy
            )
            done += 1
    Operation.objects.filter(id=operation_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


CASES = {
    # (texts, stages set up, version, target): production promotion, staging, rollback
    "promote to production": (["A {x}", "B {x}"], [("1.0.0", "staging"), ("1.0.0", "production"), ("1.0.1", "staging")], "1.0.1", "production"),  # noqa: E501
    "promote to staging": (["A {x}", "B {x}", "C {x}"], [("1.0.1", "staging")], "1.0.2", "staging"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("writes", [0, 1, 2, 3, 4])
def test_an_interrupted_promotion_is_finished_by_its_re_run(case, writes, users, held, unique_name):
    texts, stages, version, target = CASES[case]
    name = unique_name()
    template(name, texts, stages)
    request, operation_id = approved(users, name, version, target, held)
    since = last_seq()
    interrupt_after(operation_id, writes)

    assert sweeper.sweep(send=lambda ids: None)["reset"] == 1
    outcome = worker.run(operation_id, send=lambda ids, countdown=None: None)

    request.refresh_from_db()
    assert outcome.status == "succeeded", Operation.objects.get(id=operation_id).last_error
    assert (request.status, request.outcome) == ("done", "carried out")
    assert invariants(name)[target] == version
    assert not external_moves_since(since, name).exists()
    assert not TemplateFlag.objects.filter(template__name=name).exists()


@pytest.mark.parametrize("writes", [0, 1, 2, 3])
def test_an_interrupted_rollback_is_finished_by_its_re_run(writes, users, held, unique_name):
    name = unique_name()
    template(
        name,
        ["A {x}", "B {x}"],
        [("1.0.0", "staging"), ("1.0.0", "production"), ("1.0.1", "staging"), ("1.0.1", "production")],  # noqa: E501
    )  # fmt: skip
    request = reviews.file_rollback(
        users["bob"], template_name=name, version="1.0.0", reason="1.0.1 is broken"
    )
    if request.status == "open":
        reviews.approve(users["carol"], request.pk)
    operation_id = held[-1]
    interrupt_after(operation_id, writes)

    sweeper.sweep(send=lambda ids: None)
    worker.run(operation_id, send=lambda ids, countdown=None: None)

    request.refresh_from_db()
    assert request.status == "done", request.outcome
    assert invariants(name)["production"] == "1.0.0"


def test_an_alias_moved_by_another_program_after_planning_is_refused_not_overwritten(
    users, held, unique_name
):
    name = unique_name()
    template(name, ["A {x}", "B {x}", "C {x}"], [("1.0.1", "staging")])
    request, operation_id = approved(users, name, "1.0.2", "staging", held)
    operation = worker.claim(operation_id)
    worker._intent_of(operation, get_registry())  # planned and recorded, nothing written
    # Another program moves staging to 1.0.0 before the worker's first write.
    plain_client().set_registered_model_alias(to_registered_model_name(name), "staging", "1")
    Operation.objects.filter(id=operation_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    sweeper.sweep(send=lambda ids: None)

    outcome = worker.run(operation_id, send=lambda ids, countdown=None: None)

    request.refresh_from_db()
    assert outcome.status == "failed"
    assert request.status == "failed"
    assert "the staging alias" in request.outcome and "moved outside registry_ui" in request.outcome
    assert get_registry().gateway.alias_map(name)["staging"] == "1"  # not overwritten
    flag = TemplateFlag.objects.get(template__name=name, kind="write_refused")
    assert flag.version == "1.0.2"
    assert TemplateFlag.objects.filter(template__name=name, kind="outside_change").exists()
    assert AuditEvent.objects.filter(
        action="version.stage_changed", source="external", object_id=f"{name}@1.0.0"
    ).exists()
    assert AuditEvent.objects.filter(action="template.flagged", object_id=name).exists()


def test_a_version_registered_twice_is_reported_and_only_the_first_is_promoted(
    users, held, unique_name
):
    name = unique_name()
    template(name, ["A {x}"])
    registered = to_registered_model_name(name)
    first = get_registry().gateway.list_versions(name)[0]
    client = plain_client()
    # Another program registers the same semantic version again, with our tags.
    copy = client.get_model_version(registered, first.mlflow_version)
    client.create_model_version(registered, source=copy.source, run_id=copy.run_id, tags=copy.tags)

    sync_registry()

    flag = TemplateFlag.objects.get(template__name=name, kind="duplicate_version")
    assert "ignores MLflow version(s) 2" in flag.message
    request, operation_id = approved(users, name, "1.0.0", "staging", held)
    worker.run(operation_id, send=lambda ids, countdown=None: None)
    request.refresh_from_db()
    assert request.status == "done", request.outcome
    assert get_registry().gateway.alias_map(name) == {"staging": first.mlflow_version}
    assert get_registry().load(name, stage="staging").mlflow_version == first.mlflow_version


def test_the_sync_puts_back_marks_registry_ui_left_behind_and_reports_others(
    users, held, unique_name
):
    name = unique_name()
    template(name, ["A {x}", "B {x}"], [("1.0.0", "staging")])
    # Left behind by us: a move interrupted after its alias write.
    request, operation_id = approved(users, name, "1.0.1", "staging", held)
    since = last_seq()
    interrupt_after(operation_id, 1)
    # Someone else's: a legacy stage set in MLflow's UI on nothing registry_ui moved.
    other = unique_name("other")
    template(other, ["A {x}"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain_client().transition_model_version_stage(
            to_registered_model_name(other), "1", "Production"
        )

    summary = sync_registry()

    assert summary["marks_repaired"] >= 2  # 1.0.1's tag and legacy stage, 1.0.0's
    assert summary["marks_reported"] == 1
    assert AuditEvent.objects.filter(
        action="version.marks_repaired", object_id=f"{name}@1.0.0"
    ).exists()
    flag = TemplateFlag.objects.get(template__name=other)
    assert flag.kind == "outside_change" and "legacy stage Production" in flag.message
    # Our move is not taken for someone else's, by the sync or by the re-run.
    assert not external_moves_since(since, name).exists()
    sweeper.sweep(send=lambda ids: None)
    worker.run(operation_id, send=lambda ids, countdown=None: None)
    assert PromotionRequest.objects.get(pk=request.pk).status == "done"


def test_a_pin_on_a_version_registered_twice_refuses_to_guess(unique_name):
    from registry_ui.core.errors import AmbiguousVersionError

    name = unique_name()
    template(name, ["A {x}"])
    registered = to_registered_model_name(name)
    client = plain_client()
    copy = client.get_model_version(registered, "1")
    impostor = dict(copy.tags, **{"registry_ui.template": "Impostor {x}"})
    client.create_model_version(registered, source=copy.source, run_id=copy.run_id, tags=impostor)
    get_registry().invalidate()

    with pytest.raises(AmbiguousVersionError, match="refusing to guess"):
        PromptModel.load_from_registry(name, version="1.0.0")
