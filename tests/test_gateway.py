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
from tests.support.mlflow_server import free_port


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


def test_over_http_versions_are_read_from_mlflows_json_as_the_client_would_read_them(
    mlflow_server, unique_name, mlflow_sqlite_uri
):
    # The sweep reads versions straight from MLflow's JSON answer (no protobuf parsing):
    # every field the gateway reads must equal what MlflowClient.search_model_versions gives.
    from registry_ui.prompt_model import PromptModel

    prompt_model.configure_mlflow_with_registry(mlflow_server.url)
    text, chat = unique_name("wire-text"), unique_name("wire-chat")
    PromptModel(text, "Hi {who}", "1.0.0", metadata={"owner": "ada"}).register(actor="ada")
    PromptModel(text, "Hi {who}, {when}", "1.1.0").register(actor="ada")
    PromptModel(
        chat,
        [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "{q}"}],
        "1.0.0",
        model_config={"temperature": 0.2},
        response_format={"type": "object", "properties": {"a": {"type": "string"}}},
    ).register(actor="bob")
    mlflow = gateway.MlflowGateway()
    registered = [gateway.to_registered_model_name(n) for n in (text, chat)]
    mlflow.client.set_registered_model_alias(registered[0], "staging", "2")
    mlflow.client.set_model_version_tag(registered[0], "1", "empty", "")
    mlflow.client.update_model_version(registered[0], "1", description="first")
    names = ", ".join(f"'{n}'" for n in registered)
    wanted = f"name IN ({names})"

    wire = list(mlflow._paged_versions(wanted, order_by=["name ASC", "version_number ASC"]))
    client = mlflow.client.search_model_versions(
        wanted, order_by=["name ASC", "version_number ASC"]
    )

    assert all(isinstance(v, gateway.WireVersion) for v in wire) and len(wire) == 3
    fields = [f for f in gateway.WireVersion.__dataclass_fields__ if f != "aliases"]
    assert [{f: getattr(v, f) for f in fields} for v in wire] == [
        {f: getattr(v, f) for f in fields} for v in client
    ]
    assert [list(v.aliases) for v in wire] == [list(v.aliases) for v in client]
    [first] = [v for v in wire if (v.name, v.version) == (registered[0], "1")]
    assert first.tags["empty"] == "" and first.description == "first"
    import mlflow as mlflow_api

    native = unique_name("wire-native").replace("/", "-")
    mlflow_api.genai.register_prompt(native, "Hi {{ who }}", commit_message="first words")
    prompt_only = f"{gateway.NATIVE_PROMPT_FILTER} AND name = '{native}'"  # else left out
    [wire_native] = mlflow._paged_versions(prompt_only)
    [client_native] = mlflow.client.search_model_versions(prompt_only)
    assert {f: getattr(wire_native, f) for f in fields} == {
        f: getattr(client_native, f) for f in fields
    }
    assert mlflow.native_versions(native)[0].commit_message == "first words"
    by_name, problems = mlflow.scan_models(mlflow.client.search_registered_models(wanted))
    assert problems == [] and [r.version for r in by_name[text]] == ["1.0.0", "1.1.0"]
    assert by_name[text][1].stage == "staging"
    assert by_name[chat][0].extra["model_config"] == {"temperature": 0.2}
    assert by_name[chat][0].registered_by == "bob"
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def test_the_json_read_sorts_mlflows_errors_as_the_client_does(mlflow_server, mlflow_sqlite_uri):
    prompt_model.configure_mlflow_with_registry(mlflow_server.url)
    mlflow = gateway.MlflowGateway()
    with pytest.raises(RegistryRejectedError, match="list versions"):
        list(mlflow._paged_versions("version_number LIKE 'x'"))  # not a filter MLflow takes

    prompt_model.configure_mlflow_with_registry(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryUnavailableError, match="list versions"):
        list(gateway.MlflowGateway()._paged_versions("name = 'x'"))
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)
