"""The review policy, tested directly (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.policy import (
    ApprovalPolicy,
    CurrentFacts,
    MetricObservation,
    PolicyError,
    ReleaseItem,
    RequestFacts,
    VersionState,
    check_request_path,
    check_reviewer,
    evaluate_gate,
    evaluate_gate_across,
    execution_problems,
    plan_release,
    stale_reason,
)
from registry_ui.core.stages import ModelStage as S


def test_default_approvals_per_target():
    policy = ApprovalPolicy()
    assert policy.required("promote", "staging") == 1
    assert policy.required("promote", S.PRODUCTION) == 2
    assert policy.required("rollback", S.PRODUCTION) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"production": 0}, "at least one approval"),
        ({"staging": -1}, "whole number 0-10"),
        ({"rollback": 11}, "whole number 0-10"),
        ({"production": "2"}, "whole number"),
    ],
)
def test_policy_refuses_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ApprovalPolicy(**kwargs)


def test_four_eyes():
    check_reviewer("carol", requester="alice", authors=["bob"], label="#1")
    with pytest.raises(PolicyError, match="you filed #1"):
        check_reviewer("Alice", requester="alice", authors=[], label="#1")
    with pytest.raises(PolicyError, match="author of the version in #1"):
        check_reviewer("bob", requester="alice", authors=["BOB", ""], label="#1")


@pytest.mark.parametrize(
    ("kind", "current", "target", "error"),
    [
        ("promote", S.DEV, S.STAGING, None),
        ("promote", S.STAGING, S.PRODUCTION, None),
        ("promote", S.DEV, S.PRODUCTION, "straight to production"),
        ("promote", S.ARCHIVED, S.PRODUCTION, "only staging versions"),
        ("promote", S.STAGING, S.STAGING, "already in staging"),
        ("promote", S.DEV, S.ARCHIVED, "staging or production"),
        ("rollback", S.ARCHIVED, S.PRODUCTION, None),
        ("rollback", S.PRODUCTION, S.PRODUCTION, "in production already"),
        ("rollback", S.STAGING, S.PRODUCTION, "promote it instead"),
        ("rollback", S.ARCHIVED, S.STAGING, "production only"),
    ],
)
def test_request_paths(kind, current, target, error):
    if error is None:
        check_request_path(kind, current, target, "t 1.0.0")
    else:
        with pytest.raises(PolicyError, match=error):
            check_request_path(kind, current, target, "t 1.0.0")


FACTS = RequestFacts("#1", "promote", S.PRODUCTION, S.STAGING, "h1", 3)


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        (CurrentFacts(S.STAGING, "h1", 3), None),
        (CurrentFacts(None, "", 3), "no longer in the registry"),
        (CurrentFacts(S.STAGING, "h2", 3), "content changed"),
        (CurrentFacts(S.STAGING, "h1", 4), "stages changed"),
        (CurrentFacts(S.ARCHIVED, "h1", 3), "now archived"),
    ],
)
def test_stale_reasons(current, reason):
    found = stale_reason(FACTS, current)
    if reason is None:
        assert found is None
    else:
        assert reason in found


def test_execution_needs_enough_valid_approvals():
    ok = CurrentFacts(S.STAGING, "h1", 3)
    assert execution_problems(FACTS, ok, approvals=2, required=2) == []
    [problem] = execution_problems(FACTS, ok, approvals=1, required=2)
    assert "1 valid approval(s) of 2 required" in problem
    assert (
        len(execution_problems(FACTS, CurrentFacts(S.STAGING, "h1", 9), approvals=1, required=2))
        == 2
    )


@given(
    stage=st.sampled_from(list(S)),
    sha=st.sampled_from(["h1", "h2"]),
    epoch=st.integers(0, 5),
    approvals=st.integers(0, 4),
)
def test_execution_allowed_only_when_nothing_changed(stage, sha, epoch, approvals):
    problems = execution_problems(
        FACTS, CurrentFacts(stage, sha, epoch), approvals=approvals, required=2
    )
    unchanged = stage == S.STAGING and sha == "h1" and epoch == 3
    assert (problems == []) == (unchanged and approvals >= 2)


@pytest.mark.parametrize(
    ("metadata", "observation", "status"),
    [
        ({}, None, "no_target"),
        ({"engagement_target": "high"}, None, "no_target"),
        ({"engagement_target": 0.05}, None, "no_data"),
        ({"engagement_target": 0.05}, MetricObservation(0.09, 10), "no_data"),
        ({"engagement_target": 0.05}, MetricObservation(0.06, 500, ci_low=0.051), "pass"),
        ({"engagement_target": 0.05}, MetricObservation(0.06, 500, ci_low=0.04), "fail"),
        ({"engagement_target": 0.05}, MetricObservation(0.04, 500), "fail"),
    ],
)
def test_gate(metadata, observation, status):
    result = evaluate_gate(metadata, observation, min_samples=100)
    assert result.status == status
    assert result.failing == (status == "fail")
    assert result.detail


def test_gate_reads_no_data_until_experiments():
    assert evaluate_gate({"engagement_target": 0.06}, None).detail.startswith("no data")


def test_release_plan_describes_changes_and_problems():
    states = {
        "a": {"1.0.0": VersionState(S.PRODUCTION, "x"), "1.1.0": VersionState(S.STAGING, "y")},
        "b": {"1.0.0": VersionState(S.DEV, "z")},
    }
    plans = plan_release(
        [
            ReleaseItem("a", "1.1.0", S.PRODUCTION),
            ReleaseItem("b", "1.0.0", S.PRODUCTION),
            ReleaseItem("c", "1.0.0", S.STAGING),
            ReleaseItem("a", "1.0.0", S.PRODUCTION),
        ],
        states,
        checks=lambda item, state: ["needs a purpose"] if item.name == "a" else [],
    )
    a, b, c, again = plans
    assert a.changes == ("1.1.0: staging -> production", "1.0.0: production -> archived")
    assert a.replaces == "1.0.0"
    assert a.problems == ("a 1.1.0: check failed: needs a purpose",)
    assert any("straight to production" in p for p in b.problems)
    assert c.problems == ("c: no such template",)
    assert any("each template once" in p for p in again.problems)


def test_release_plan_flags_open_requests():
    states = {"a": {"1.0.0": VersionState(S.DEV, "x")}}
    [plan] = plan_release(
        [ReleaseItem("a", "1.0.0", S.STAGING)],
        states,
        open_requests=frozenset({("a", "1.0.0", "staging")}),
    )
    assert plan.problems == ("a 1.0.0: a request to move it to staging is open already",)
    assert plan.replaces is None


# -- the gate over every experiment that served a version -------------------------------------

FAILING = MetricObservation(0.03, 500, experiment="old-one")
PASSING = MetricObservation(0.09, 500, ci_low=0.07, experiment="second")
EMPTY = MetricObservation(0.0, 0, experiment="newest")


def test_one_failing_experiment_fails_the_gate_whatever_came_after_it():
    result = evaluate_gate_across({"engagement_target": 0.05}, [EMPTY, PASSING, FAILING])

    assert result.status == "fail"
    assert result.detail.startswith("experiment old-one: below the target 0.05")
    assert "newest: no data, second: pass" in result.detail


def test_without_a_failure_one_passing_experiment_passes():
    assert evaluate_gate_across({"engagement_target": 0.05}, [EMPTY, PASSING]).status == "pass"


def test_the_newest_verdict_stands_when_none_passes_or_fails_and_one_reads_as_before():
    metadata = {"engagement_target": 0.05}
    assert evaluate_gate_across(metadata, [EMPTY, EMPTY]).status == "no_data"
    assert evaluate_gate_across(metadata, []) == evaluate_gate(metadata, None)
    assert evaluate_gate_across(metadata, [FAILING]) == evaluate_gate(metadata, FAILING)
