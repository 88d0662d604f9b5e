"""Experiments' pure parts: sticky assignment, configuration, and the statistics checked
against scipy's own tests and intervals."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from registry_ui.core import experiment_stats as es
from registry_ui.core.experiments import (
    BUCKETS,
    ExperimentConfig,
    ExperimentConfigError,
    Variant,
    bucket,
)
from registry_ui.experiments import choose_variant

ROOT = Path(__file__).resolve().parent.parent.parent
START = datetime(2026, 11, 1, tzinfo=UTC)


def config(*weights: int, key: str = "hook-cta", **extra) -> ExperimentConfig:
    names = ["control", "treatment", "third", "fourth"]
    return ExperimentConfig(
        key=key,
        template="persona/entrepreneur/hook-generator",
        variants=tuple(Variant(names[i], f"1.{i}.0", weight) for i, weight in enumerate(weights)),
        metric="engagement",
        start=extra.pop("start", START),
        stop=extra.pop("stop", START + timedelta(days=14)),
        **extra,
    )


# -- assignment ------------------------------------------------------------------------------


def test_the_same_unit_gets_the_same_variant_every_time():
    experiment = config(50, 50)

    first = [experiment.assign(f"user-{i}").name for i in range(1000)]

    assert first == [experiment.assign(f"user-{i}").name for i in range(1000)]
    assert set(first) == {"control", "treatment"}


def test_assignment_is_the_same_in_another_process():
    experiment = config(50, 30, 20)
    units = [f"user-{i}" for i in range(2000)]
    code = (
        "import json, sys\n"
        "from registry_ui.core.experiments import ExperimentConfig\n"
        "from registry_ui.experiments import choose_variant\n"
        "config = ExperimentConfig.from_json(sys.argv[1])\n"
        "now = config.start.__class__.fromisoformat(sys.argv[2])\n"
        "units = json.load(sys.stdin)\n"
        "print(json.dumps([choose_variant(config, u, now=now).variant for u in units]))\n"
    )
    now = START + timedelta(days=1)

    # PYTHONHASHSEED differs per process: a hash()-based assignment would not survive this.
    result = subprocess.run(
        [sys.executable, "-c", code, experiment.to_json(), now.isoformat()],
        input=json.dumps(units),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "random"},
    )

    assert result.returncode == 0, result.stderr
    here = [choose_variant(experiment, u, now=now).variant for u in units]
    assert json.loads(result.stdout) == here


def test_the_buckets_are_fixed_across_versions_of_this_code():
    # A stored contract: changing the hash would reshuffle every running experiment.
    assert [bucket("hook-cta", u) for u in ("u1", "u2", "alice")] == [
        bucket("hook-cta", "u1"),
        bucket("hook-cta", "u2"),
        bucket("hook-cta", "alice"),
    ]
    assert (
        bucket("hook-cta", "u1")
        == int.from_bytes(__import__("hashlib").sha256(b"hook-cta\x00u1").digest()[:8], "big")
        % BUCKETS
    )


@pytest.mark.parametrize("weights", [(50, 50), (90, 10), (1, 1, 2), (70, 20, 10)])
def test_the_split_is_honoured_over_100k_units(weights):
    experiment = config(*weights)
    units = 100_000

    counts = Counter(experiment.assign(f"unit-{i}").name for i in range(units))

    total = sum(weights)
    for variant in experiment.variants:
        expected = units * variant.weight / total
        # 5 standard deviations of a binomial count: fails by chance about once in 3 million.
        tolerance = 5 * math.sqrt(units * (variant.weight / total) * (1 - variant.weight / total))
        assert abs(counts[variant.name] - expected) < tolerance, (variant, counts)


def test_different_experiments_split_units_independently():
    first, second = config(50, 50, key="exp-a"), config(50, 50, key="exp-b")

    together = Counter(
        (first.assign(f"u{i}").name, second.assign(f"u{i}").name) for i in range(20_000)
    )

    assert all(4500 < n < 5500 for n in together.values()), together


def test_outside_its_window_or_stopped_every_unit_gets_the_control():
    experiment = config(1, 1000)

    before = choose_variant(experiment, "u1", now=START - timedelta(seconds=1))
    during = [choose_variant(experiment, f"u{i}", now=START) for i in range(50)]
    after = choose_variant(experiment, "u1", now=START + timedelta(days=14))
    stopped = ExperimentConfig.from_dict({**experiment.to_dict(), "status": "stopped"})

    assert (before.variant, before.version, before.in_experiment) == ("control", "1.0.0", False)
    assert {a.variant for a in during} == {"treatment"} and all(a.in_experiment for a in during)
    assert (after.variant, after.in_experiment) == ("control", False)
    assert choose_variant(stopped, "u1", now=START + timedelta(days=1)).variant == "control"


@given(st.lists(st.integers(1, 100), min_size=2, max_size=6), st.text(max_size=30))
def test_every_unit_gets_one_of_the_variants_and_the_json_form_round_trips(weights, unit):
    experiment = config(*weights[:4])

    again = ExperimentConfig.from_json(experiment.to_json())

    assert again == experiment
    assert again.assign(unit) == experiment.assign(unit)
    assert experiment.assign(unit) in experiment.variants


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "Hook CTA"}, "key 'Hook CTA'"),
        ({"metric": "Engagement-Rate"}, "metric"),
        ({"kind": "median"}, "kind 'median'"),
        ({"variants": (Variant("a", "1.0.0", 1),)}, "variants: 1 given"),
        ({"variants": (Variant("a", "1.0.0", 1), Variant("a", "1.1.0", 1))}, "appears twice"),
        ({"variants": (Variant("a", "1.0.0", 1), Variant("b", "1.0.0", 1))}, "two variants"),
        ({"variants": (Variant("a", "1.0.0", 0), Variant("b", "1.1.0", 1))}, "weight 0"),
        ({"stop": START}, "stop must be after start"),
        ({"start": datetime(2026, 11, 1)}, "time zone"),
    ],
)
def test_a_configuration_that_cannot_run_is_refused_naming_the_field(change, message):
    base = config(50, 50).to_dict()
    kwargs = {
        "key": base["key"],
        "template": base["template"],
        "variants": config(50, 50).variants,
        "metric": "engagement",
        "start": START,
        "stop": START + timedelta(days=1),
    }

    with pytest.raises(ExperimentConfigError, match=message):
        ExperimentConfig(**{**kwargs, **change})


# -- statistics, against scipy ---------------------------------------------------------------


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (60, 1000), (999, 1000), (5, 5)])
def test_the_wilson_interval_matches_scipy(x, n):
    expected = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")

    interval = es.wilson_interval(x, n)

    assert interval.low == pytest.approx(expected.low, abs=1e-12)
    assert interval.high == pytest.approx(expected.high, abs=1e-12)


def test_the_t_interval_matches_scipy():
    rng = random.Random(3)
    values = [rng.gauss(12, 4) for _ in range(37)]
    sample = es.Sample.of(values)

    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=stats.tmean(values), scale=stats.sem(values)
    )

    interval = es.t_interval(sample)
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(60, 1000, 75, 1000), (5, 40, 1, 55)])
def test_the_two_proportion_z_test_matches_scipys_chi_square(x1, n1, x2, n2):
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)

    z, p_value = es.two_proportion_z_test(x1, n1, x2, n2)

    assert p_value == pytest.approx(p, rel=1e-9)
    assert z * z == pytest.approx(chi2, rel=1e-9)
    assert z > 0 if x2 / n2 > x1 / n1 else z < 0


def test_welchs_t_test_and_interval_match_scipy():
    rng = random.Random(7)
    a = [rng.gauss(10, 2) for _ in range(40)]
    b = [rng.gauss(11, 5) for _ in range(25)]
    expected = stats.ttest_ind(b, a, equal_var=False)
    expected_ci = expected.confidence_interval(0.95)

    t, df, p = es.welch_t_test(es.Sample.of(a), es.Sample.of(b))
    interval = es.welch_interval(es.Sample.of(a), es.Sample.of(b))

    assert (t, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert df == pytest.approx(expected.df)
    assert interval.low == pytest.approx(expected_ci.low)
    assert interval.high == pytest.approx(expected_ci.high)


def test_the_difference_of_rates_uses_newcombes_interval_from_scipys_wilson_bounds():
    x1, n1, x2, n2 = 60, 1000, 80, 1000
    w1 = stats.binomtest(x1, n1).proportion_ci(method="wilson")
    w2 = stats.binomtest(x2, n2).proportion_ci(method="wilson")
    d = x2 / n2 - x1 / n1

    interval = es.newcombe_interval(x1, n1, x2, n2)

    assert interval.low == pytest.approx(
        d - math.sqrt((x2 / n2 - w2.low) ** 2 + (w1.high - x1 / n1) ** 2)
    )
    assert interval.high == pytest.approx(
        d + math.sqrt((w2.high - x2 / n2) ** 2 + (x1 / n1 - w1.low) ** 2)
    )
    # Newcombe's own worked example (Stat Med 1998, 17:873, table II, method 10):
    # 56/70 - 48/80 gives 0.0524 to 0.3339.
    example = es.newcombe_interval(48, 80, 56, 70)
    assert (round(example.low, 4), round(example.high, 4)) == (0.0524, 0.3339)


def test_the_relative_uplift_interval_is_the_delta_method_on_the_log_ratio():
    control, treatment = es.Sample(1000, 60, 60), es.Sample(1000, 80, 80)
    se = math.sqrt(0.94 / (1000 * 0.06) + 0.92 / (1000 * 0.08))
    z = stats.norm.ppf(0.975)

    comparison = es.compare(control, treatment, "rate")

    assert comparison.uplift == pytest.approx(80 / 60 - 1)
    assert comparison.uplift_ci.low == pytest.approx(math.exp(math.log(80 / 60) - z * se) - 1)
    assert comparison.uplift_ci.high == pytest.approx(math.exp(math.log(80 / 60) + z * se) - 1)
    assert comparison.uplift_ci.low < comparison.uplift < comparison.uplift_ci.high


def test_comparing_means_uses_welch_and_rates_use_the_z_test():
    rng = random.Random(11)
    a = es.Sample.of(rng.gauss(5, 1) for _ in range(200))
    b = es.Sample.of(rng.gauss(5.5, 1) for _ in range(200))

    means = es.compare(a, b, "mean")
    rates = es.compare(es.Sample(500, 40, 40), es.Sample(500, 70, 70), "rate")

    assert means.p_value == pytest.approx(es.welch_t_test(a, b)[2])
    assert means.significant() and means.difference == pytest.approx(b.mean - a.mean)
    assert rates.p_value == pytest.approx(es.two_proportion_z_test(40, 500, 70, 500)[1])


def test_sums_give_the_same_variance_as_the_values():
    rng = random.Random(5)
    values = [rng.uniform(0, 100) for _ in range(500)]

    assert es.Sample.of(values).variance == pytest.approx(stats.tvar(values))


def test_no_data_gives_no_interval_and_no_p_value():
    empty = es.Sample(0, 0, 0)

    assert es.estimate(empty, "rate").ci is None
    assert es.estimate(es.Sample(1, 3.0, 9.0), "mean").ci is None
    comparison = es.compare(empty, es.Sample(10, 1, 1), "rate")
    assert comparison.p_value is None and comparison.uplift is None
    assert es.two_proportion_z_test(0, 100, 0, 100) == (0.0, 1.0)
