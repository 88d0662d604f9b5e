"""Two versions' figures in one sentence, and how many more units would settle it.

Pure Python over experiment_stats (scipy's distributions): the compare page's verdict,
"1.2.0 is ahead by 0.90 pts, not yet significant, ~2,100 more units per arm needed".

The units needed are the classic two-sample size for a two-sided test at ``alpha`` with
``power``, taking the observed difference as the one to detect and each arm's observed
variance (p(1 - p) for a rate): n = (z(1 - alpha/2) + z(power))^2 (var_a + var_b) / d^2.
It is a planning figure, not a promise: the difference seen so far may shrink.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from registry_ui.core.experiment_stats import ALPHA, Comparison, Sample, compare

POWER = 0.8


def units_per_arm(
    a: Sample, b: Sample, kind: str, *, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Units each arm needs in all to detect the difference seen so far; None when there is
    no difference (or no variance) to size a test for."""
    if a.n < 2 or b.n < 2:
        return None
    difference = b.mean - a.mean
    if difference == 0:
        return None
    if kind == "rate":
        var_a, var_b = a.mean * (1 - a.mean), b.mean * (1 - b.mean)
    else:
        var_a, var_b = a.variance, b.variance
    if var_a + var_b == 0:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(z * z * (var_a + var_b) / (difference * difference))


@dataclass(frozen=True)
class Verdict:
    comparison: Comparison | None
    sentence: str
    significant: bool
    more_per_arm: int | None  # units each arm still needs; None when settled or unknown


def difference_text(value: float, kind: str) -> str:
    """A difference as the pages write it: percentage points for a rate."""
    return f"{abs(value) * 100:.2f} pts" if kind == "rate" else f"{abs(value):.4g}"


def verdict(
    a_label: str, a: Sample, b_label: str, b: Sample, kind: str, *, alpha: float = ALPHA
) -> Verdict:
    """``b`` against ``a`` in one sentence, naming b first."""
    if a.n == 0 or b.n == 0:
        missing = a_label if a.n == 0 else b_label
        return Verdict(None, f"No outcomes for {missing} yet: nothing to compare.", False, None)
    comparison = compare(a, b, kind)
    confidence = round((1 - alpha) * 100)
    if comparison.p_value is None:
        return Verdict(
            comparison,
            f"Too few outcomes to test the difference (at least 2 per version, {a_label} has "
            f"{a.n:,} and {b_label} {b.n:,}).",
            False,
            None,
        )
    if comparison.difference == 0:
        direction = f"{b_label} and {a_label} are level"
    else:
        ahead = "ahead of" if comparison.difference > 0 else "behind"
        direction = (
            f"{b_label} is {ahead} {a_label} by {difference_text(comparison.difference, kind)}"
        )
    p = f"p = {comparison.p_value:.2g}"
    if comparison.significant(alpha):
        return Verdict(comparison, f"{direction}: significant at {confidence}% ({p}).", True, None)
    needed = units_per_arm(a, b, kind, alpha=alpha)
    more = max(0, needed - min(a.n, b.n)) if needed is not None else None
    if more:
        tail = f", ~{_round(more):,} more units per arm needed to tell at {confidence}%"
    elif needed is not None:
        tail = ": the sample is large enough, so the difference is likely noise"
    else:
        tail = ""
    return Verdict(comparison, f"{direction}, not yet significant ({p}){tail}.", False, more)


def _round(n: int) -> int:
    """Two significant figures: a planning figure should not look more exact than it is."""
    if n < 100:
        return n
    digits = len(str(n)) - 2
    return round(n, -digits)
