"""The statistics of an A/B experiment, from per-variant sums (n, sum, sum of squares).

Pure Python over scipy's distributions (no Django, no MLflow); tests/core check every
number against scipy's own tests and intervals. Kept apart from experiments.py so that a
runtime service assigning units never imports scipy.

- a rate (each outcome 0 or 1): Wilson score interval; difference by Newcombe's hybrid
  score interval (built from the two Wilson intervals); pooled two-proportion z-test;
- a mean: Student t interval; difference by Welch's interval; Welch's t-test;
- relative uplift (treatment / control - 1): the delta-method interval on the log of the
  ratio (Katz), undefined when either estimate is not positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


@dataclass(frozen=True)
class Sample:
    """What the database keeps per variant: count, sum and sum of squares of outcomes."""

    n: int
    total: float
    total_sq: float

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance (n - 1), never negative despite float rounding."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))

    @classmethod
    def of(cls, values) -> Sample:
        values = list(values)
        return cls(len(values), float(sum(values)), float(sum(v * v for v in values)))


EMPTY = Sample(0, 0.0, 0.0)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    n: int
    value: float  # the rate or the mean
    ci: Interval | None  # None below 2 samples (a mean) or with none (a rate)


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control."""

    difference: float
    difference_ci: Interval | None
    uplift: float | None  # relative: treatment / control - 1
    uplift_ci: Interval | None
    statistic: float | None  # z or t
    p_value: float | None

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_value is not None and self.p_value < alpha


# -- one variant ------------------------------------------------------------------------------


def wilson_interval(successes: float, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    if n <= 0:
        return None
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def t_interval(sample: Sample, confidence: float = CONFIDENCE) -> Interval | None:
    if sample.n < 2:
        return None
    half = stats.t.ppf(1 - (1 - confidence) / 2, sample.n - 1) * math.sqrt(
        sample.variance / sample.n
    )
    return Interval(sample.mean - half, sample.mean + half)


def estimate(sample: Sample, kind: str, confidence: float = CONFIDENCE) -> Estimate:
    if kind == "rate":
        return Estimate(sample.n, sample.mean, wilson_interval(sample.total, sample.n, confidence))
    return Estimate(sample.n, sample.mean, t_interval(sample, confidence))


# -- two variants -----------------------------------------------------------------------------


def two_proportion_z_test(x1: float, n1: int, x2: float, n2: int) -> tuple[float, float] | None:
    """Pooled z-test of p2 - p1 = 0: (z, two-sided p-value); None without data."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # every outcome 0, or every outcome 1: no difference to see
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def welch_t_test(a: Sample, b: Sample) -> tuple[float, float, float] | None:
    """Welch's t-test of mean(b) - mean(a) = 0: (t, degrees of freedom, two-sided p)."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.variance / a.n, b.variance / b.n
    se2 = va + vb
    difference = b.mean - a.mean
    if se2 == 0:
        return (0.0, float(a.n + b.n - 2), 1.0 if difference == 0 else 0.0)
    df = se2 * se2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))
    t = difference / math.sqrt(se2)
    return t, df, float(2 * stats.t.sf(abs(t), df))


def newcombe_interval(
    x1: float, n1: int, x2: float, n2: int, confidence: float = CONFIDENCE
) -> Interval | None:
    """Newcombe's hybrid score interval for p2 - p1 (his method 10)."""
    first, second = wilson_interval(x1, n1, confidence), wilson_interval(x2, n2, confidence)
    if first is None or second is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    difference = p2 - p1
    return Interval(
        difference - math.sqrt((p2 - second.low) ** 2 + (first.high - p1) ** 2),
        difference + math.sqrt((second.high - p2) ** 2 + (p1 - first.low) ** 2),
    )


def welch_interval(a: Sample, b: Sample, confidence: float = CONFIDENCE) -> Interval | None:
    """The interval of mean(b) - mean(a) with Welch-Satterthwaite degrees of freedom."""
    test = welch_t_test(a, b)
    if test is None:
        return None
    _, df, _ = test
    half = stats.t.ppf(1 - (1 - confidence) / 2, df) * math.sqrt(
        a.variance / a.n + b.variance / b.n
    )
    difference = b.mean - a.mean
    return Interval(difference - half, difference + half)


def uplift_interval(
    control: Sample, treatment: Sample, kind: str, confidence: float = CONFIDENCE
) -> Interval | None:
    """treatment / control - 1, by the delta method on log(treatment / control)."""
    if control.n < 2 or treatment.n < 2 or control.mean <= 0 or treatment.mean <= 0:
        return None
    if kind == "rate":
        var_c = control.mean * (1 - control.mean)
        var_t = treatment.mean * (1 - treatment.mean)
    else:
        var_c, var_t = control.variance, treatment.variance
    se = math.sqrt(
        var_c / (control.n * control.mean**2) + var_t / (treatment.n * treatment.mean**2)
    )
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    log_ratio = math.log(treatment.mean / control.mean)
    return Interval(math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)


def compare(
    control: Sample, treatment: Sample, kind: str, confidence: float = CONFIDENCE
) -> Comparison:
    difference = treatment.mean - control.mean
    uplift = treatment.mean / control.mean - 1 if control.mean > 0 and treatment.n else None
    if kind == "rate":
        test = two_proportion_z_test(control.total, control.n, treatment.total, treatment.n)
        statistic, p_value = test if test else (None, None)
        difference_ci = newcombe_interval(
            control.total, control.n, treatment.total, treatment.n, confidence
        )
    else:
        test = welch_t_test(control, treatment)
        statistic, _, p_value = test if test else (None, None, None)
        difference_ci = welch_interval(control, treatment, confidence)
    return Comparison(
        difference=difference,
        difference_ci=difference_ci,
        uplift=uplift,
        uplift_ci=uplift_interval(control, treatment, kind, confidence),
        statistic=statistic,
        p_value=p_value,
    )
