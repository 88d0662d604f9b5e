"""Two versions of a template side by side, by metric: every experiment's outcomes for
each version summed, the difference with its interval, the p-value, a one-sentence verdict
and the cumulative figures by day (the chart and the CSV). Two queries, whatever the number
of days or experiments: the daily aggregates of both versions, and their MLflow run metrics.

Outcomes of one version from several experiments are pooled: each experiment's metric is
the same quantity for the version whichever experiment served it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Sum

from registry_ui.core.experiment_stats import CONFIDENCE, EMPTY, Sample, estimate
from registry_ui.core.verdict import Verdict, verdict
from registry_ui.web.experiments import formats
from registry_ui.web.experiments.charts import LineChart, line_chart
from registry_ui.web.models import (
    Experiment,
    OutcomeAggregate,
    RunMetric,
    Template,
    TemplateVersion,
)


@dataclass
class Side:
    """One version's figures for one metric."""

    version: TemplateVersion
    sample: Sample = EMPTY
    days: list[tuple[date, Sample]] = field(default_factory=list)  # each day's own sums
    runs: int = 0
    run_mean: float | None = None


@dataclass
class MetricComparison:
    metric: str
    kind: str  # rate or mean
    first: Side
    second: Side
    verdict: Verdict | None = None
    chart: LineChart | None = None

    def cells(self, side: Side) -> dict:
        shown = estimate(side.sample, self.kind)
        return {
            "n": f"{side.sample.n:,}",
            "value": formats.value(shown.value, self.kind) if side.sample.n else "",
            "ci": formats.between(shown.ci, self.kind),
            "runs": side.runs,
            "run_mean": f"{side.run_mean:.4g}" if side.run_mean is not None else "",
        }

    @property
    def first_cells(self) -> dict:
        return self.cells(self.first)

    @property
    def second_cells(self) -> dict:
        return self.cells(self.second)

    @property
    def difference(self) -> str:
        c = self.verdict.comparison if self.verdict else None
        if c is None:
            return ""
        interval = formats.between(c.difference_ci, self.kind, differences=True)
        return formats.signed(c.difference, self.kind) + (f" ({interval})" if interval else "")

    @property
    def p_value(self) -> str:
        c = self.verdict.comparison if self.verdict else None
        return formats.p_value(c.p_value) if c else ""


def compare_versions(first: TemplateVersion, second: TemplateVersion) -> list[MetricComparison]:
    """Every metric either version has, ``second`` measured against ``first``."""
    by_version = {first.pk: first, second.pk: second}
    found: dict[str, MetricComparison] = {}

    def entry(metric: str, kind: str) -> MetricComparison:
        if metric not in found:
            found[metric] = MetricComparison(metric, kind, Side(first), Side(second))
        return found[metric]

    daily = (
        OutcomeAggregate.objects.filter(variant__version_id__in=by_version)
        .values("variant__version_id", "metric", "day", "experiment__kind", "experiment__metric")
        .annotate(n=Sum("count"), total=Sum("sum"), total_sq=Sum("sumsq"))
        .order_by("metric", "day")
    )
    per_day: dict[tuple[str, int, date], Sample] = defaultdict(lambda: EMPTY)
    for row in daily:
        primary = row["metric"] == row["experiment__metric"]
        kind = row["experiment__kind"] if primary else "mean"
        comparison = entry(row["metric"], kind)
        key = (row["metric"], row["variant__version_id"], row["day"])
        per_day[key] = per_day[key] + Sample(row["n"], row["total"], row["total_sq"])
    for (metric, version_id, day), sample in sorted(per_day.items(), key=lambda i: i[0][2]):
        side = found[metric].first if version_id == first.pk else found[metric].second
        side.days.append((day, sample))
        side.sample = side.sample + sample
    imported = (
        RunMetric.objects.filter(version_id__in=by_version)
        .values("version_id", "key")
        .annotate(runs=Count("id"), total=Sum("value"))
    )
    for row in imported:
        comparison = entry(row["key"], found[row["key"]].kind if row["key"] in found else "mean")
        side = comparison.first if row["version_id"] == first.pk else comparison.second
        side.runs, side.run_mean = row["runs"], row["total"] / row["runs"]
    for comparison in found.values():
        if comparison.first.sample.n or comparison.second.sample.n:
            comparison.verdict = verdict(
                first.version,
                comparison.first.sample,
                second.version,
                comparison.second.sample,
                comparison.kind,
            )
            comparison.chart = _chart(comparison)
    return [found[name] for name in sorted(found)]


def cumulative(
    side: Side, kind: str
) -> list[tuple[date, Sample, float, float | None, float | None]]:
    """(day, running sums, estimate, CI low, CI high) for each day with outcomes."""
    running = EMPTY
    rows = []
    for day, sample in side.days:
        running = running + sample
        shown = estimate(running, kind)
        rows.append(
            (
                day,
                running,
                shown.value,
                shown.ci.low if shown.ci else None,
                shown.ci.high if shown.ci else None,
            )
        )
    return rows


def _chart(comparison: MetricComparison) -> LineChart | None:
    kind = comparison.kind
    lines, bands = [], []
    for side in (comparison.first, comparison.second):
        rows = cumulative(side, kind)
        lines.append((side.version.version, [(day, value) for day, _, value, _, _ in rows]))
        bands.append([(day, low, high) for day, _, _, low, high in rows if low is not None])
    return line_chart(
        lines,
        title=f"{comparison.metric}, cumulative {'rate' if kind == 'rate' else 'mean'} by day",
        value_format=(lambda v: f"{v * 100:.1f}%") if kind == "rate" else (lambda v: f"{v:.3g}"),
        bands=bands,
    )


CSV_HEADER = [
    "metric",
    "kind",
    "version",
    "day",
    "n",
    "sum",
    "cumulative_n",
    "cumulative_estimate",
    f"ci{round(CONFIDENCE * 100)}_low",
    f"ci{round(CONFIDENCE * 100)}_high",
]


def csv_rows(comparisons: list[MetricComparison]):
    """The daily figures behind the page, one row per metric, version and day. Rates as
    fractions (0.0622), not percent: the file is for spreadsheets and scripts."""
    yield CSV_HEADER
    for comparison in comparisons:
        for side in (comparison.first, comparison.second):
            daily = dict(side.days)
            for day, running, value, low, high in cumulative(side, comparison.kind):
                yield [
                    comparison.metric,
                    comparison.kind,
                    side.version.version,
                    day.isoformat(),
                    daily[day].n,
                    _number(daily[day].total),
                    running.n,
                    _number(value),
                    _number(low),
                    _number(high),
                ]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


SUGGESTED_TEMPLATES = 500


def comparable_templates(limit: int = SUGGESTED_TEMPLATES) -> list[str]:
    """The template names the compare page suggests: those with an experiment or with
    metrics imported from MLflow runs, the ones that have figures to compare. Read from
    the experiment and metric tables first (a join lets the planner walk every template),
    so it grows with the experiments run, not with the number of templates in the
    registry; any other name can still be typed."""
    ids = set(
        Experiment.objects.filter(template__isnull=False)  # not those on native prompts
        .order_by()
        .values_list("template_id", flat=True)
        .distinct()
    )
    measured = list(
        RunMetric.objects.order_by().values_list("version_id", flat=True).distinct()[: limit * 10]
    )
    ids.update(
        TemplateVersion.objects.filter(pk__in=measured)
        .order_by()
        .values_list("template_id", flat=True)
        .distinct()
    )
    return list(
        Template.objects.filter(pk__in=sorted(ids))
        .order_by("name")
        .values_list("name", flat=True)[:limit]
    )
