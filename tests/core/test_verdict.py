"""The compare page's verdict and the units per arm it asks for."""

from __future__ import annotations

import math

from scipy import stats

from registry_ui.core.experiment_stats import Sample
from registry_ui.core.verdict import units_per_arm, verdict


def rate(successes: int, n: int) -> Sample:
    return Sample(n, float(successes), float(successes))


def test_units_per_arm_follow_the_textbook_formula_for_two_rates():
    a, b = rate(600, 10_000), rate(700, 10_000)  # 6% against 7%

    expected = (
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * (0.06 * 0.94 + 0.07 * 0.93) / 0.01**2
    )

    assert units_per_arm(a, b, "rate") == math.ceil(expected)  # about 9,000


def test_no_difference_needs_no_sample_size():
    assert units_per_arm(rate(60, 1000), rate(60, 1000), "rate") is None


def test_a_small_lead_is_not_yet_significant_and_says_how_many_more_units_are_needed():
    result = verdict("1.1.0", rate(60, 1000), "1.2.0", rate(69, 1000), "rate")

    assert not result.significant
    assert result.sentence.startswith("1.2.0 is ahead of 1.1.0 by 0.90 pts, not yet significant")
    assert result.more_per_arm == units_per_arm(rate(60, 1000), rate(69, 1000), "rate") - 1000
    assert result.more_per_arm == 10_690
    assert "~11,000 more units per arm needed" in result.sentence  # two significant figures


def test_a_clear_lead_is_significant():
    result = verdict("1.1.0", rate(600, 10_000), "1.2.0", rate(800, 10_000), "rate")

    assert result.significant
    assert result.sentence.startswith("1.2.0 is ahead of 1.1.0 by 2.00 pts: significant at 95%")


def test_behind_is_said_as_behind():
    result = verdict("1.1.0", rate(800, 10_000), "1.2.0", rate(600, 10_000), "rate")

    assert "1.2.0 is behind 1.1.0 by 2.00 pts" in result.sentence


def test_a_version_without_outcomes_is_named():
    result = verdict("1.1.0", rate(0, 0), "1.2.0", rate(5, 100), "rate")

    assert result.sentence == "No outcomes for 1.1.0 yet: nothing to compare."
    assert result.comparison is None
