"""Fixtures of the prompts domain's tests."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from registry_ui.prompt_model import configure_mlflow_with_registry, get_registry


@pytest.fixture
def plain(mlflow_server, mlflow_sqlite_uri):
    """This process on the real `mlflow server`, and another program's plain MlflowClient on
    it (the one that changes things outside registry_ui); back on the SQLite store after."""
    configure_mlflow_with_registry(mlflow_server.url)
    get_registry().invalidate()
    yield MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    configure_mlflow_with_registry(mlflow_sqlite_uri)


@pytest.fixture
def webhook_server(tmp_path, mlflow_sqlite_uri):
    """An `mlflow server` of its own that delivers webhooks to loopback: MLflow only delivers
    to https and public addresses unless told otherwise, and stores webhook secrets encrypted
    with a Fernet key (shared/mlflow-notes.md). This process uses it until the test ends."""
    from cryptography.fernet import Fernet

    from tests.support.mlflow_server import MlflowServer, free_port

    server = MlflowServer(
        tmp_path / "mlflow",
        free_port(),
        enable_jobs=False,
        extra_env={
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        },
    ).start()
    configure_mlflow_with_registry(server.url)
    yield server
    configure_mlflow_with_registry(mlflow_sqlite_uri)
    server.stop()
