"""Waiting for batches carried out by real workers, and reading MLflow without registry_ui."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence

import mlflow
from django.db.models import Count

from registry_ui.core.names import to_registered_model_name
from registry_ui.web.models import Batch, Operation
from registry_ui.web.operations import tasks as operation_tasks

# The contract tag that holds a version's semantic version (docs/mlflow-contract.md).
SEMVER_TAG = "registry_ui.version"


def batch_finished(batch: Batch) -> bool:
    batch.refresh_from_db()
    return batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED)


def progress(batches: Sequence[Batch]) -> str:
    """Operations of these batches by status, and a few last errors: for timeout messages."""
    ids = [batch.pk for batch in batches]
    by_status = dict(
        Operation.objects.filter(batch_id__in=ids)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    errors = list(
        Operation.objects.filter(batch_id__in=ids)
        .exclude(last_error="")
        .values_list("template_name", "version", "status", "last_error")[:5]
    )
    return f"operations by status: {by_status}; last errors: {errors}"


def wait_for_batches(
    batches: Sequence[Batch],
    *,
    timeout: float,
    sweep_every: float | None = None,
    what: str = "the batches to finish",
) -> None:
    """Wait until every batch has finished; run the sweeper every ``sweep_every`` seconds.

    Sweeping here, in the test process, stands in for Celery beat: it resets operations
    stuck running past settings.OPERATION_TIME_LIMIT_SECONDS and re-sends pending ones
    older than settings.OPERATION_SEND_GRACE_SECONDS.
    """
    start = time.monotonic()
    next_sweep = start + sweep_every if sweep_every else float("inf")
    while not all(batch_finished(batch) for batch in batches):
        now = time.monotonic()
        if now - start > timeout:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; {progress(batches)}"
            )
        if now >= next_sweep:
            operation_tasks.sweep_operations()
            next_sweep = now + sweep_every
        time.sleep(0.5)


def semver_counts(tracking_uri: str, names: Iterable[str]) -> dict[str, Counter]:
    """template name -> how many MLflow versions carry each semantic version.

    Reads with a plain MlflowClient, so a registry_ui bug cannot hide a duplicate.
    """
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    counts = {}
    for name in names:
        found = client.search_model_versions(
            filter_string=f"name = '{to_registered_model_name(name)}'", max_results=10_000
        )
        assert not found.token, f"{name} has more versions than one page holds"
        counts[name] = Counter(version.tags.get(SEMVER_TAG) for version in found)
    return counts
