"""Results of experiments: per-variant estimates, comparisons, the metric gate's observation.

The statistics are pure (registry_ui.core.experiment_stats)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby

from django.db.models import Count, F, Sum

from registry_ui.core.experiment_stats import EMPTY, Comparison, Estimate, Sample, compare, estimate
from registry_ui.core.policy import MetricObservation
from registry_ui.web.models import (
    Experiment,
    ExperimentVariant,
    OutcomeAggregate,
    RunMetric,
    TemplateVersion,
)


@dataclass
class VariantResult:
    variant: ExperimentVariant
    sample: Sample
    estimate: Estimate
    enough: bool  # reached the minimum sample
    comparison: Comparison | None  # against the control; None for the control itself
    series: list[tuple[date, float]] = field(default_factory=list)  # cumulative, by day
    # The cumulative estimate's confidence interval by day: (day, low, high).
    band: list[tuple[date, float, float]] = field(default_factory=list)
    minimum: int = 0  # the experiment's minimum sample per variant

    @property
    def progress(self) -> int:
        """n, capped at the minimum (for a <progress> bar)."""
        return min(self.sample.n, self.minimum)


@dataclass
class Results:
    experiment: Experiment
    metric: str
    kind: str
    variants: list[VariantResult]
    days: list[date]
    metrics: list[str]  # every metric reported for this experiment

    @property
    def control(self) -> VariantResult:
        return self.variants[0]

    @property
    def enough(self) -> bool:
        return all(v.enough for v in self.variants)


def samples_by_variant(experiment: Experiment, metric: str) -> dict[int, Sample]:
    totals = (
        OutcomeAggregate.objects.filter(experiment=experiment, metric=metric)
        .values("variant_id")
        .annotate(n=Sum("count"), total=Sum("sum"), total_sq=Sum("sumsq"))
    )
    return {row["variant_id"]: Sample(row["n"], row["total"], row["total_sq"]) for row in totals}


def results(experiment: Experiment, metric: str | None = None) -> Results:
    """Per variant: n, estimate and interval, and each treatment against the control; the
    cumulative estimate by day for the chart. Three queries, whatever the data."""
    metric = metric or experiment.metric
    kind = experiment.kind if metric == experiment.metric else "mean"
    variants = list(
        experiment.variants.select_related("version", "native_version__prompt").order_by("position")
    )
    rows = (
        OutcomeAggregate.objects.filter(experiment=experiment, metric=metric)
        .order_by("day")
        .values_list("variant_id", "day", "count", "sum", "sumsq")
    )
    days = sorted({row[1] for row in rows})
    running: dict[int, Sample] = {}
    series: dict[int, list[tuple[date, float]]] = {v.pk: [] for v in variants}
    bands: dict[int, list[tuple[date, float, float]]] = {v.pk: [] for v in variants}
    for day, day_rows in groupby(rows, key=lambda r: r[1]):
        for variant_id, _, n, s, sq in day_rows:
            running[variant_id] = running.get(variant_id, EMPTY) + Sample(n, s, sq)
            if variant_id in series:
                series[variant_id].append((day, running[variant_id].mean))
                ci = estimate(running[variant_id], kind).ci
                if ci is not None:
                    bands[variant_id].append((day, ci.low, ci.high))
    metrics = sorted(
        set(
            OutcomeAggregate.objects.filter(experiment=experiment)
            .order_by()
            .values_list("metric", flat=True)
            .distinct()
        )
        | {experiment.metric}
    )
    control_sample = running.get(variants[0].pk, EMPTY) if variants else EMPTY
    out = []
    for position, variant in enumerate(variants):
        sample = running.get(variant.pk, EMPTY)
        out.append(
            VariantResult(
                variant=variant,
                sample=sample,
                estimate=estimate(sample, kind),
                enough=sample.n >= experiment.min_samples,
                comparison=compare(control_sample, sample, kind) if position else None,
                series=series[variant.pk],
                band=bands[variant.pk],
                minimum=experiment.min_samples,
            )
        )
    return Results(experiment, metric, kind, out, days, metrics)


def observation_for(version: TemplateVersion) -> MetricObservation | None:
    """What the latest experiment serving this version measured, beside production.

    None when no experiment has a variant serving it: the gate then reads "no data".
    """
    found = observations_for(version, limit=1)
    return found[0] if found else None


def observations_for(
    version: TemplateVersion, *, limit: int | None = None
) -> list[MetricObservation]:
    """What every experiment that served this version measured, newest first.

    Stopped and finished experiments count: the gate reads them all, so a failing result is
    never hidden by a newer one (core.policy.evaluate_gate_across).
    """
    mine = (
        ExperimentVariant.objects.filter(version=version)
        .select_related("experiment")
        .order_by("-experiment__start_at", "-experiment_id")
    )
    return [_observation(version, variant) for variant in mine[:limit]]


def _observation(version: TemplateVersion, mine: ExperimentVariant) -> MetricObservation:
    experiment = mine.experiment
    variants = list(experiment.variants.select_related("version").order_by("position"))
    others = [v for v in variants if v.pk != mine.pk]
    control = next((v for v in others if v.version.stage == "production"), None)
    if control is None and variants[0].pk != mine.pk:
        control = variants[0]
    samples = samples_by_variant(experiment, experiment.metric)
    sample = samples.get(mine.pk, EMPTY)
    measured = estimate(sample, experiment.kind)
    figures = {
        "rate": measured.value,
        "samples": sample.n,
        "ci_low": measured.ci.low if measured.ci else None,
        "ci_high": measured.ci.high if measured.ci else None,
        "kind": experiment.kind,
        "metric": experiment.metric,
        "label": version.version,
        "experiment": experiment.key,
        "target": experiment.target,
        "min_samples": experiment.min_samples,
    }
    if control is not None:
        control_sample = samples.get(control.pk, EMPTY)
        comparison = compare(control_sample, sample, experiment.kind)
        figures.update(
            control_label=control.version.version,
            control_rate=control_sample.mean,
            control_samples=control_sample.n,
            difference=comparison.difference,
            difference_ci=(
                (comparison.difference_ci.low, comparison.difference_ci.high)
                if comparison.difference_ci
                else None
            ),
            p_value=comparison.p_value,
        )
    return MetricObservation(**figures)


def progress_by_experiment(experiments: Sequence[Experiment]) -> dict[int, dict[int, int]]:
    """experiment id -> {variant id: n of its primary metric}, in one query."""
    rows = (
        OutcomeAggregate.objects.filter(experiment__in=[e.pk for e in experiments])
        .filter(metric=F("experiment__metric"))
        .values("experiment_id", "variant_id")
        .annotate(n=Sum("count"))
    )
    found: dict[int, dict[int, int]] = {}
    for row in rows:
        found.setdefault(row["experiment_id"], {})[row["variant_id"]] = row["n"]
    return found


def version_metrics(version: TemplateVersion) -> dict[str, dict]:
    """metric -> {"sample", "estimate", "runs", "run_mean"} for one version: the outcomes of
    every experiment that served it, and the metrics imported from its MLflow runs."""
    found: dict[str, dict] = {}
    rows = (
        OutcomeAggregate.objects.filter(variant__version=version)
        .values("metric", "experiment__kind", "experiment__metric")
        .annotate(n=Sum("count"), total=Sum("sum"), total_sq=Sum("sumsq"))
    )
    for row in rows:
        kind = row["experiment__kind"] if row["metric"] == row["experiment__metric"] else "mean"
        entry = found.setdefault(row["metric"], {"sample": EMPTY, "kind": kind})
        entry["sample"] = entry["sample"] + Sample(row["n"], row["total"], row["total_sq"])
    for entry in found.values():
        entry["estimate"] = estimate(entry["sample"], entry["kind"])
    imported = (
        RunMetric.objects.filter(version=version)
        .values("key")
        .annotate(runs=Count("id"), total=Sum("value"))
    )
    for row in imported:
        entry = found.setdefault(row["key"], {"kind": "mean"})
        entry["runs"] = row["runs"]
        entry["run_mean"] = row["total"] / row["runs"]
    return found
