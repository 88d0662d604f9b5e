from __future__ import annotations

import re
import uuid

import pytest

from registry_ui import prompt_model
from tests.support.mlflow_server import MlflowServer, free_port


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real `mlflow server` per test session: it takes 15-30 s to start here."""
    root = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(root, free_port(), enable_jobs=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_sqlite_uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow-sqlite') / 'mlflow.db'}"


@pytest.fixture(params=["sqlite", "server"])
def registry_uri(request, mlflow_sqlite_uri):
    """Each registry test runs against a local SQLite store and over HTTP to a server."""
    if request.param == "server":
        uri = request.getfixturevalue("mlflow_server").url
    else:
        uri = mlflow_sqlite_uri
    prompt_model.configure_mlflow_with_registry(uri)
    yield uri
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


@pytest.fixture
def sqlite_registry_uri(mlflow_sqlite_uri):
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)
    return mlflow_sqlite_uri


@pytest.fixture
def unique_name(request):
    """A template name no other test uses, since the registry outlives each test."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]

    def make(prefix: str = "t") -> str:
        return f"{prefix}/{stem}-{uuid.uuid4().hex[:8]}"

    return make
