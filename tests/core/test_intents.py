"""Stage moves planned as intents: every prefix of our own writes is recognised, anything
else is an outside change (registry_ui.core.intents)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.intents import (
    AliasStep,
    Intent,
    OutsideChangeError,
    plan_promotion,
    plan_rollback,
)
from registry_ui.core.records import VersionRecord, canonical_versions, duplicate_versions
from registry_ui.core.stages import ModelStage, StageTransitionError


def record(version, number, stage="dev", aliases=()):
    return VersionRecord(
        name="t",
        version=version,
        template="Hello {x}",
        metadata={},
        stage=ModelStage(stage),
        mlflow_version=str(number),
        content_sha256="",
        aliases=tuple(aliases),
    )


def history():
    """1.0.0 archived, 1.0.1 production, 1.0.2 staging, 1.0.3 dev."""
    return [
        record("1.0.0", 1, "archived"),
        record("1.0.1", 2, "production", ["production"]),
        record("1.0.2", 3, "staging", ["staging"]),
        record("1.0.3", 4),
    ]


def aliases_after(intent: Intent, steps_done: int, start: dict[str, str]) -> dict[str, str]:
    aliases = dict(start)
    for step in intent.steps[:steps_done]:
        if step.after is None:
            aliases.pop(step.alias, None)
        else:
            aliases[step.alias] = step.after
    return aliases


def test_a_production_promotion_moves_production_then_removes_staging():
    intent = plan_promotion("t", history(), "1.0.2", "production")

    assert intent.steps == (
        AliasStep("production", "2", "3"),
        AliasStep("staging", "3", None),
    )
    assert intent.stages_before == {"2": "production", "3": "staging"}
    assert intent.stages_after == {"2": "archived", "3": "production"}


def test_a_staging_promotion_archives_the_version_it_replaces():
    intent = plan_promotion("t", history(), "1.0.3", "staging")

    assert intent.steps == (AliasStep("staging", "3", "4"),)
    assert intent.stages_after == {"3": "archived", "4": "staging"}


def test_a_rollback_brings_an_archived_version_back():
    intent = plan_rollback("t", history(), "1.0.0")

    assert intent.steps == (AliasStep("production", "2", "1"),)
    assert intent.stages_after == {"1": "production", "2": "archived"}


def test_a_rollback_of_a_version_that_never_left_dev_is_refused():
    with pytest.raises(StageTransitionError, match="only an archived version"):
        plan_rollback("t", history(), "1.0.3")


def test_skipping_staging_is_refused_before_anything_is_planned():
    with pytest.raises(StageTransitionError, match="staging first"):
        plan_promotion("t", history(), "1.0.3", "production")


@pytest.mark.parametrize(
    "plan",
    [
        lambda r: plan_promotion("t", r, "1.0.2", "production"),
        lambda r: plan_promotion("t", r, "1.0.3", "staging"),
        lambda r: plan_rollback("t", r, "1.0.0"),
    ],
)
def test_every_prefix_of_our_own_writes_is_recognised_and_finished(plan):
    intent = plan(history())
    start = {"production": "2", "staging": "3"}
    for done in range(len(intent.steps) + 1):
        aliases = aliases_after(intent, done, start)
        assert intent.remaining_steps(aliases) == list(intent.steps[done:])


def test_an_alias_moved_by_someone_else_is_an_outside_change():
    intent = plan_promotion("t", history(), "1.0.2", "production")

    with pytest.raises(OutsideChangeError) as refused:
        intent.remaining_steps({"production": "4", "staging": "3"})

    assert refused.value.alias == "production"
    assert "moved outside registry_ui" in str(refused.value)
    assert "MLflow version 4" in str(refused.value)
    assert "Nothing was overwritten" in str(refused.value)


def test_an_intent_survives_its_json_form():
    intent = plan_promotion("t", history(), "1.0.2", "production")

    assert Intent.from_json(intent.to_json()) == intent


def test_undo_reverses_only_our_own_writes():
    intent = plan_promotion("t", history(), "1.0.2", "production")
    half = aliases_after(intent, 1, {"production": "2", "staging": "3"})  # prod moved only

    undo, foreign = intent.undo(half)

    assert undo.steps == (AliasStep("production", "3", "2"),)
    assert foreign == []
    assert undo.stages_after == {"2": "production", "3": "staging"}


def test_undo_leaves_an_alias_someone_else_moved_since():
    intent = plan_promotion("t", history(), "1.0.2", "production")

    undo, foreign = intent.undo({"production": "4", "staging": "3"})

    assert undo.steps == ()
    assert foreign == [intent.steps[0]]
    assert "2" not in undo.stages_after and "3" not in undo.stages_after


@given(st.permutations([1, 2, 3, 4, 5]))
def test_of_two_records_of_one_version_the_lowest_mlflow_number_wins(order):
    records = [record("1.0.0", n) for n in order]

    assert [r.mlflow_version for r in canonical_versions(records)] == ["1"]
    assert [r.mlflow_version for r in duplicate_versions(records)["1.0.0"]] == [
        "2",
        "3",
        "4",
        "5",
    ]


def test_a_duplicate_never_receives_an_alias():
    records = [*history(), record("1.0.3", 9)]  # 1.0.3 registered twice, 4 and 9
    for shuffled in itertools.permutations(records[-2:]):
        intent = plan_promotion("t", [*records[:-2], *shuffled], "1.0.3", "staging")
        assert intent.steps == (AliasStep("staging", "3", "4"),)
