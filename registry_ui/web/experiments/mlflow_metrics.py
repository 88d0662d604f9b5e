"""Experiment metrics logged to MLflow runs, and run metrics imported from MLflow."""

from __future__ import annotations

import math
from datetime import UTC, timedelta
from itertools import groupby

from django.db.models import F, Max
from django.utils import timezone

from registry_ui.prompt_model import get_registry
from registry_ui.web.models import (
    Experiment,
    ExperimentVariant,
    OutcomeAggregate,
    RunMetric,
    TemplateVersion,
)


def log_metrics_to_mlflow(experiment_id: int) -> int:
    """Log the days whose figures changed since the last run to the variants' MLflow runs.

    Each variant has one run tagged with template and version; a day is logged as
    ``<metric>`` (its rate or mean) and ``<metric>_count`` at step = days since the start.
    A day logged again (more outcomes arrived) gets a newer timestamp, so MLflow's latest
    value is the current one. Returns the number of days logged.
    """
    gateway = get_registry().gateway
    experiment = Experiment.objects.select_related("template").get(pk=experiment_id)
    pending = list(
        OutcomeAggregate.objects.filter(experiment=experiment)
        .exclude(count=F("logged_count"))
        .order_by("variant_id", "metric", "day")
    )
    if not pending:
        return 0
    variants = {v.pk: v for v in experiment.variants.select_related("version")}
    stamp = int(timezone.now().timestamp() * 1000)
    first_day = experiment.start_at.astimezone(UTC).date()
    for variant_id, rows in groupby(pending, key=lambda row: row.variant_id):
        rows = list(rows)
        run_id = _metrics_run(gateway, experiment, variants[variant_id])
        metrics = []
        for row in rows:
            step = (row.day - first_day).days
            metrics.append((row.metric, row.sum / row.count, stamp, step))
            metrics.append((f"{row.metric}_count", row.count, stamp, step))
        gateway.log_metrics(run_id, metrics)
        for row in rows:
            OutcomeAggregate.objects.filter(pk=row.pk).update(logged_count=row.count)
    return len(pending)


def _metrics_run(gateway, experiment: Experiment, variant: ExperimentVariant) -> str:
    if variant.mlflow_run_id:
        return variant.mlflow_run_id
    run_id = gateway.start_metrics_run(
        experiment=experiment.key,
        variant=variant.name,
        name=experiment.subject_name,
        version=variant.label,
    )
    # Two loggers racing both create a run; the first one recorded wins, the other is idle.
    ExperimentVariant.objects.filter(pk=variant.pk, mlflow_run_id="").update(mlflow_run_id=run_id)
    variant.mlflow_run_id = ExperimentVariant.objects.values_list("mlflow_run_id", flat=True).get(
        pk=variant.pk
    )
    return variant.mlflow_run_id


def experiments_to_log() -> list[int]:
    return list(
        OutcomeAggregate.objects.exclude(count=F("logged_count"))
        .order_by()
        .values_list("experiment_id", flat=True)
        .distinct()
    )


# Runs that ended this long before the last import are read again (clocks of MLflow and of
# this database may differ a little; a run may end while an import reads).
IMPORT_OVERLAP = timedelta(minutes=10)


def import_run_metrics(*, full: bool = False) -> dict[str, int]:
    """Import the latest metrics of MLflow runs tagged with a template version we mirror.

    Only the runs whose metrics may have moved since the last import are read: those still
    running and those that ended since (less IMPORT_OVERLAP); ``full`` (and a first
    import) reads every tagged run, for metrics logged to a run after it ended. Safe to
    re-run: a run's metric is one row, updated to its latest value.
    """
    last = None if full else RunMetric.objects.aggregate(last=Max("imported_at"))["last"]
    gateway = get_registry().gateway
    if last is None:
        runs = gateway.version_runs()
    else:
        since = last - IMPORT_OVERLAP
        runs = gateway.version_runs_active(ended_since_ms=int(since.timestamp() * 1000))
    wanted = {(run.template, run.version) for run in runs}
    versions = {
        (row.template.name, row.version): row
        for row in TemplateVersion.objects.select_related("template").filter(
            template__name__in={name for name, _ in wanted}
        )
    }
    now = timezone.now()
    rows = [
        RunMetric(
            version=versions[(run.template, run.version)],
            run_id=run.run_id,
            key=key[:250],
            value=value,
            run_started_at=run.started_at,
            imported_at=now,
        )
        for run in runs
        if (run.template, run.version) in versions
        for key, value in run.metrics.items()
        if math.isfinite(value)
    ]
    RunMetric.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["run_id", "key"],
        update_fields=["value", "imported_at"],
        batch_size=1000,
    )
    return {"runs": len(runs), "metrics": len(rows), "full": int(last is None)}
