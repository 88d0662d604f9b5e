"""The periodic import of run metrics costs what is active, not the history (issue 20): runs
still going and runs that ended since the last import are read; a run that ended before is
not read again until the full import. Against a real MLflow SQLite store of this test's own.
"""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from registry_ui.prompt_model import PromptModel, configure_mlflow_with_registry, get_registry
from registry_ui.web.experiments import mlflow_metrics
from registry_ui.web.models import RunMetric
from registry_ui.web.prompts.mirror import sync_registry

pytestmark = pytest.mark.django_db

NAME = "runs/template"
DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def mlflow(tmp_path, mlflow_sqlite_uri):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    configure_mlflow_with_registry(uri)
    PromptModel(NAME, "Hi {who}", "1.0.0", metadata={"author": "a"}).register()
    sync_registry()
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    configure_mlflow_with_registry(mlflow_sqlite_uri)


def tagged_run(client: MlflowClient, experiment_id: str, value: float, *, ended_days_ago=None):
    run = client.create_run(
        experiment_id, tags={"registry_ui.template_name": NAME, "registry_ui.version": "1.0.0"}
    )
    client.log_metric(run.info.run_id, "ctr", value)
    if ended_days_ago is not None:
        ended = int(time.time() * 1000) - ended_days_ago * DAY_MS
        client.set_terminated(run.info.run_id, end_time=ended)
    return run.info.run_id


def values() -> dict[str, float]:
    return dict(RunMetric.objects.values_list("run_id", "value"))


def test_only_running_and_recently_ended_runs_are_read_after_the_first_import(mlflow):
    experiment = mlflow.create_experiment("services")
    old = [tagged_run(mlflow, experiment, 0.01 * n, ended_days_ago=3) for n in range(1, 5)]
    running = tagged_run(mlflow, experiment, 0.5)

    first = mlflow_metrics.import_run_metrics()
    assert (first["full"], first["runs"]) == (1, 5)  # nothing imported before: every run

    mlflow.log_metric(running, "ctr", 0.6)
    ended_now = tagged_run(mlflow, experiment, 0.7, ended_days_ago=0)
    mlflow.log_metric(old[0], "ctr", 0.9)  # logged to a run that ended days ago

    again = mlflow_metrics.import_run_metrics()

    assert (again["full"], again["runs"]) == (0, 2)  # the running one and the one just ended
    assert values()[running] == 0.6 and values()[ended_now] == 0.7
    assert values()[old[0]] == 0.01  # not read again: only the full import sees it

    full = mlflow_metrics.import_run_metrics(full=True)

    assert (full["full"], full["runs"]) == (1, 6)
    assert values()[old[0]] == 0.9


def test_the_gateway_reads_running_and_recently_ended_runs_in_few_calls(mlflow):
    experiment = mlflow.create_experiment("services")
    for n in range(3):
        tagged_run(mlflow, experiment, 0.1 * n, ended_days_ago=2)
    running = tagged_run(mlflow, experiment, 0.5)
    gateway = get_registry().gateway
    calls = gateway.calls

    runs = gateway.version_runs_active(ended_since_ms=int(time.time() * 1000) - DAY_MS)

    assert [run.run_id for run in runs] == [running]
    assert gateway.calls - calls == 3  # experiments, running runs, recently ended runs
