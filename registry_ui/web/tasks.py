"""Celery tasks: thin interfaces over registry_ui.web.operations (they take ids, not rows)."""

from __future__ import annotations

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from registry_ui.core.errors import RegistryUnavailableError
from registry_ui.web import operations
from registry_ui.web.notify import WebhookUnavailable


@shared_task(
    bind=True,
    acks_late=True,  # safe: running an operation twice records its first effect
    reject_on_worker_lost=True,
    max_retries=None,  # bounded below, by our own count of transient failures
)
def run_operation(self, operation_id: str) -> str:
    outcome = operations.run(operation_id)
    if outcome.status == "retry":
        if self.request.retries >= settings.OPERATION_MAX_RETRIES:
            operations.give_up(operation_id, error=outcome.detail)
            return "failed"
        raise self.retry(countdown=_backoff(self.request.retries), max_retries=None)
    return outcome.status


@shared_task
def sweep_operations() -> dict[str, int]:
    return operations.sweep()


def _backoff(retries: int) -> float:
    # Celery's own exponential backoff with full jitter, capped at a minute.
    return get_exponential_backoff_interval(factor=1, retries=retries, maximum=60, full_jitter=True)


@shared_task(
    autoretry_for=(RegistryUnavailableError,), retry_backoff=True, retry_jitter=True, max_retries=5
)
def sync_template(name: str) -> int:
    """Mirror one template now (a webhook said it changed); returns the changes seen."""
    from registry_ui.prompt_model import get_registry
    from registry_ui.web.mirror import mirror_template
    from registry_ui.web.models import AuditEvent

    records = get_registry().gateway.list_versions(name)
    if not records:
        return 0
    return len(mirror_template(name, records, source=AuditEvent.Source.EXTERNAL))


@shared_task
def sync_registry_task() -> dict[str, int]:
    from registry_ui.web.mirror import sync_registry

    return sync_registry()


@shared_task(ignore_result=True)
def notify_request(request_id: int, event: str) -> None:
    from registry_ui.web import notify

    notify.deliver(request_id, event)


@shared_task(
    ignore_result=True,
    autoretry_for=(WebhookUnavailable,),  # unreachable, timed out, 5xx or 429; not other 4xx
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_webhook(event: str, request_data: dict) -> int:
    """POST one signed request event to NOTIFY_WEBHOOK_URL (signed afresh on every attempt)."""
    from registry_ui.web import notify

    return notify.post_webhook(event, request_data)


# -- experiments --------------------------------------------------------------------------


@shared_task(
    autoretry_for=(RegistryUnavailableError,), retry_backoff=True, retry_jitter=True, max_retries=8
)
def publish_experiment(experiment_id: int) -> None:
    """Write an experiment's configuration to MLflow (always the current one: idempotent)."""
    from registry_ui.web import experiments

    experiments.publish(experiment_id)


@shared_task(
    autoretry_for=(RegistryUnavailableError,), retry_backoff=True, retry_jitter=True, max_retries=5
)
def log_experiment_metrics(experiment_id: int) -> int:
    from registry_ui.web import experiments

    return experiments.log_metrics_to_mlflow(experiment_id)


@shared_task
def log_all_experiment_metrics() -> int:
    """Periodic: one task per experiment whose daily figures changed since last logged."""
    from registry_ui.web import experiments

    pending = experiments.experiments_to_log()
    for experiment_id in pending:
        log_experiment_metrics.delay(experiment_id)
    return len(pending)


@shared_task(
    autoretry_for=(RegistryUnavailableError,), retry_backoff=True, retry_jitter=True, max_retries=5
)
def import_run_metrics() -> dict[str, int]:
    from registry_ui.web import experiments

    return experiments.import_run_metrics()
