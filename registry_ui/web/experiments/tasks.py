"""Celery tasks of the experiments: publishing, logging and importing metrics."""

from __future__ import annotations

from celery import shared_task

from registry_ui.core.errors import RegistryUnavailableError
from registry_ui.web.experiments import mlflow_metrics, publishing


@shared_task(
    name="registry_ui.web.tasks.publish_experiment",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def publish_experiment(experiment_id: int) -> None:
    """Write an experiment's configuration to MLflow (always the current one: idempotent)."""
    publishing.publish(experiment_id)


@shared_task(
    name="registry_ui.web.tasks.log_experiment_metrics",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def log_experiment_metrics(experiment_id: int) -> int:
    return mlflow_metrics.log_metrics_to_mlflow(experiment_id)


@shared_task(name="registry_ui.web.tasks.log_all_experiment_metrics")
def log_all_experiment_metrics() -> int:
    """Periodic: one task per experiment whose daily figures changed since last logged."""
    pending = mlflow_metrics.experiments_to_log()
    for experiment_id in pending:
        log_experiment_metrics.delay(experiment_id)
    return len(pending)


@shared_task(
    name="registry_ui.web.tasks.import_run_metrics",
    autoretry_for=(RegistryUnavailableError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def import_run_metrics(full: bool = False) -> dict[str, int]:
    """Periodic: runs still going or ended since the last import; ``full``: every run."""
    return mlflow_metrics.import_run_metrics(full=full)
