"""The gateway's configuration and error sorting (the registry paths are in test_prompt_model)."""

from __future__ import annotations

import os
import threading

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    ErrorCode,
)

from registry_ui import gateway, prompt_model
from registry_ui.core.errors import RegistryRejectedError, RegistryUnavailableError


def test_it_sets_a_tight_timeout_unless_the_user_chose_their_own(monkeypatch, mlflow_sqlite_uri):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "3")

    gateway.configure_mlflow_with_registry(mlflow_sqlite_uri)

    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "10"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "3"


def test_it_always_switches_off_mlflows_own_http_retries(monkeypatch, mlflow_sqlite_uri):
    # MLflow's client re-sends POSTs after a read timeout: a create answered late would
    # make the same version twice. A user's own setting must not turn that back on.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")

    gateway.configure_mlflow_with_registry(mlflow_sqlite_uri)

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_every_thread_gets_the_same_client(mlflow_sqlite_uri):
    gateway.configure_mlflow_with_registry(mlflow_sqlite_uri)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(gateway.get_mlflow_client()))
               for _ in range(8)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(client) for client in seen}) == 1


def test_a_new_tracking_uri_gets_a_new_client(tmp_path, mlflow_sqlite_uri):
    gateway.configure_mlflow_with_registry(mlflow_sqlite_uri)
    first = gateway.get_mlflow_client()

    gateway.configure_mlflow_with_registry(f"sqlite:///{tmp_path / 'other.db'}")
    second = gateway.get_mlflow_client()
    gateway.configure_mlflow_with_registry(mlflow_sqlite_uri)

    assert first is not second


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (MlflowException("API request to http://x failed with exception refused"),
         RegistryUnavailableError),
        (RestException({"error_code": ErrorCode.Name(INVALID_PARAMETER_VALUE), "message": "bad"}),
         RegistryRejectedError),
        (RestException({"error_code": ErrorCode.Name(RESOURCE_ALREADY_EXISTS), "message": "dup"}),
         RegistryRejectedError),
        (RestException({"error_code": "INTERNAL_ERROR", "message": "db locked"}),
         RegistryUnavailableError),
        (RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}),
         RegistryUnavailableError),
    ],
)  # fmt: skip
def test_it_sorts_mlflow_errors_into_transient_and_permanent(error, kind):
    translated = gateway.translate_error(error, action="register 'a' 1.0.0")

    assert isinstance(translated, kind)
    assert str(translated).startswith("register 'a' 1.0.0: ")


def test_mlflow_requests_do_not_probe_for_databricks_each_time(monkeypatch):
    """MLflow asks on every request whether it runs in Databricks (failed imports of
    pyspark, IPython, dbutils: ~1.5 ms of CPU a call); the gateway settles it once."""
    from mlflow.tracking.request_header.registry import resolve_request_headers
    from mlflow.utils import databricks_utils

    probes = []
    for probe in ("is_in_cluster", "is_in_databricks_notebook", "is_in_databricks_job"):
        monkeypatch.setattr(databricks_utils, probe, lambda probe=probe: probes.append(probe))

    headers = resolve_request_headers()

    assert probes == []
    assert "User-Agent" in headers  # the other providers still answer


def test_a_template_registered_into_for_the_first_time_costs_no_version_search(
    mlflow_sqlite_uri, unique_name
):
    gateway.configure_mlflow_with_registry(mlflow_sqlite_uri)
    mlflow = gateway.MlflowGateway()
    name = unique_name()

    assert mlflow.versions_to_register_into(name) == []
    assert mlflow.calls == 2  # the name check and the model's creation

    run_id = mlflow.start_registration_run(actor="alice")
    mlflow.create_version(
        name=name, version="1.0.0", template="Hi {who}", metadata={}, content_sha256="x",
        run_id=run_id, actor="alice", operation_id="op-1",
    )  # fmt: skip
    again = gateway.MlflowGateway()
    [record] = again.versions_to_register_into(name)
    assert (record.version, record.operation_id) == ("1.0.0", "op-1")
    assert again.calls == 2  # the name check finds the model, then one version search


def registered_models(tmp_path, count: int):
    """``count`` templates with one version each, in a registry of the test's own, oldest
    first; and a gateway on it."""
    from registry_ui.prompt_model import PromptModel, configure_mlflow_with_registry

    # The library's own configure: it also drops the process's registry (and its client).
    configure_mlflow_with_registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    names = [f"changed/template-{n}" for n in range(count)]
    for name in names:
        PromptModel(name, "Hi {who}", "1.0.0").register()
    return names, gateway.MlflowGateway()


def test_models_changed_since_reads_newest_first_and_stops_at_the_first_older_one(
    tmp_path, monkeypatch, mlflow_sqlite_uri
):
    monkeypatch.setattr(gateway, "_CHANGED_PAGE_SIZE", 2)
    _, mlflow = registered_models(tmp_path, 7)
    stamps = {
        m.name: m.last_updated_timestamp
        for m in mlflow.client.search_registered_models(max_results=100)
    }
    newest_three = sorted(stamps, key=stamps.get)[-3:]
    since = stamps[newest_three[0]]

    found = mlflow.models_changed_since(since)

    assert {m.name for m in found} >= set(newest_three)
    assert all(m.last_updated_timestamp >= since for m in found)
    assert mlflow.calls <= 3  # pages of 2, stopped at the first model older than `since`
    assert mlflow.models_changed_since(max(stamps.values()) + 1) == []
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def test_scan_models_reads_only_the_versions_of_the_models_given(tmp_path, mlflow_sqlite_uri):
    names, mlflow = registered_models(tmp_path, 5)
    models = mlflow.client.search_registered_models(filter_string="name = 'changed.template-3'")

    by_name, problems = mlflow.scan_models(models)

    assert list(by_name) == [names[3]] and problems == []
    assert set(mlflow.model_stamps) == {names[3]}
    assert mlflow.calls == 1  # one version search for up to a hundred models
    assert mlflow.scan_template("changed/gone") == ({}, [])  # no model: no versions
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)
