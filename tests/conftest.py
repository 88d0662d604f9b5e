from __future__ import annotations

import re
import uuid

import pytest
from django.db.backends.signals import connection_created

from registry_ui import prompt_model
from tests.support.mlflow_server import MlflowServer, free_port


def _allow_emptying_the_audit_trail(sender, connection, **kwargs):
    """Tests that commit (transaction=True, the browser's live server) end with Django
    emptying every table, which PostgreSQL does with TRUNCATE: migration 0007's trigger
    refuses that for the audit trail unless the session says otherwise."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET registry_ui.allow_audit_truncate = 'on'")


connection_created.connect(_allow_emptying_the_audit_trail, dispatch_uid="tests.audit_truncate")


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


@pytest.fixture(autouse=True)
def no_required_metadata(settings):
    """Tests run without a metadata policy: most register versions with little metadata
    ({"author": "alice"}). REGISTRY_UI_REQUIRED_METADATA=none (set in the environment, so the
    Celery workers and commands that tests start inherit it) and the dashboard's setting.

    Tests of the policy turn the default on with ``default_metadata_policy``. A MonkeyPatch
    of its own: a test's ``monkeypatch.undo()`` must not turn the policy back on.
    """
    from registry_ui.core.checks import NO_POLICY, MetadataPolicy

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGISTRY_UI_REQUIRED_METADATA", NO_POLICY)
        settings.REQUIRED_METADATA = MetadataPolicy.none()
        # The library's own semantics (PromptModel moving stages) are what most tests use;
        # tests/web/reviews/test_library_governed.py turns the dashboard's governing on.
        settings.GOVERN_LIBRARY_PROMOTIONS = False
        yield


@pytest.fixture
def default_metadata_policy(monkeypatch, settings):
    """The policy of a deployment that sets nothing: the design note's four keys."""
    from registry_ui.core.checks import MetadataPolicy

    monkeypatch.delenv("REGISTRY_UI_REQUIRED_METADATA", raising=False)
    settings.REQUIRED_METADATA = MetadataPolicy()
    return settings.REQUIRED_METADATA
