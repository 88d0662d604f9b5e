"""MLflow locked down (docs/deploy.md, "Lock MLflow down"): a real `mlflow server --app-name
basic-auth` with the deployment's auth config, accounts set up as the docs say (with
docker/mlflow-auth/setup_accounts.py), registry_ui writing as its service account and a
runtime reading as a read-only one.

MLflow's client reads MLFLOW_TRACKING_USERNAME/PASSWORD from the environment at every call,
so each test switches accounts with monkeypatch. One server for the module (about 7 s to
start here), without MLflow's job runner.
"""

from __future__ import annotations

import configparser
import importlib.util
import secrets
from pathlib import Path

import pytest

from registry_ui import gateway, prompt_model
from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import PromptModel, get_registry
from tests.support.mlflow_server import MlflowServer, free_port

pytest.importorskip(
    "flask_wtf",
    reason="MLflow's basic-auth app needs Flask-WTF: install mlflow[auth] (pyproject.toml, "
    "requirements.lock and docker/mlflow.Dockerfile must carry the extra)",
)

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.mlflow_server

ROOT = Path(__file__).resolve().parent.parent
AUTH_DIR = ROOT / "docker" / "mlflow-auth"
ADMIN = ("admin", secrets.token_urlsafe(18))
SERVICE = ("registry-ui-svc", secrets.token_urlsafe(18))


def load_setup_accounts():
    """docker/mlflow-auth/setup_accounts.py, the operator's script (not a package: it is
    mounted into the mlflow container)."""
    spec = importlib.util.spec_from_file_location("setup_accounts", AUTH_DIR / "setup_accounts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_accounts = load_setup_accounts()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """The deployment's basic_auth.ini with the auth database moved into a temporary folder."""
    root = tmp_path_factory.mktemp("mlflow-auth-server")
    config = configparser.ConfigParser()
    config.read(AUTH_DIR / "basic_auth.ini")
    config["mlflow"]["database_uri"] = f"sqlite:///{root / 'basic_auth.db'}"
    with open(root / "basic_auth.ini", "w") as ini:
        config.write(ini)
    server = MlflowServer(
        root,
        free_port(),
        enable_jobs=False,
        app_name="basic-auth",
        extra_env={
            "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        },
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accounts(auth_server):
    """The operator's set-up, as the admin: registry_ui's account and a runtime reader."""
    with pytest.MonkeyPatch.context() as patch:
        sign_in(patch, *ADMIN)
        auth = setup_accounts.auth_client(auth_server.url)
        setup_accounts.set_up_service_account(
            auth, client(auth_server), username=SERVICE[0], password=SERVICE[1]
        )
        reader = setup_accounts.create_reader(auth, username="runtime-reader")
    return {"reader": ("runtime-reader", reader)}


@pytest.fixture
def as_registry_ui(auth_server, accounts, monkeypatch, mlflow_sqlite_uri):
    """This process as registry_ui: its service account, pointed at the locked-down server."""
    sign_in(monkeypatch, *SERVICE)
    prompt_model.configure_mlflow_with_registry(auth_server.url)
    yield
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def sign_in(patch: pytest.MonkeyPatch, username: str, password: str) -> None:
    patch.setenv("MLFLOW_TRACKING_USERNAME", username)
    patch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def client(server: MlflowServer) -> MlflowClient:
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def register_and_release(name: str) -> str:
    """What registry_ui does for a template: register it, then promote it twice."""
    PromptModel.register_many(
        [PromptModel(name, "Hello {x}", "1.0.0", metadata={"author": "alice"})]
    )
    get_registry().promote(name, "1.0.0", "staging")
    get_registry().promote(name, "1.0.0", "production")
    return to_registered_model_name(name)


def refusal(call) -> MlflowException:
    with pytest.raises(MlflowException) as refused:
        call()
    return refused.value


def test_a_read_only_account_loads_production_but_cannot_move_an_alias_or_edit_a_tag(
    as_registry_ui, auth_server, accounts, monkeypatch, unique_name
):
    name = unique_name()
    registered = register_and_release(name)

    sign_in(monkeypatch, *accounts["reader"])
    runtime = client(auth_server)
    production = runtime.get_model_version_by_alias(registered, "production")
    alias = refusal(lambda: runtime.set_registered_model_alias(registered, "production", "1"))
    tag = refusal(lambda: runtime.set_model_version_tag(registered, "1", "registry_ui.stage", "x"))

    assert production.tags["registry_ui.template"] == "Hello {x}"
    assert PromptModel.load_from_registry(name).render(x="you") == "Hello you"
    for refused in (alias, tag):
        assert (refused.error_code, refused.get_http_status_code()) == ("PERMISSION_DENIED", 403)
    assert runtime.get_model_version_by_alias(registered, "production").tags == production.tags


def test_an_account_without_grants_cannot_add_a_version_to_a_registry_ui_model(
    as_registry_ui, auth_server, accounts, monkeypatch, unique_name
):
    registered = register_and_release(unique_name())
    run_id = client(auth_server).get_model_version(registered, "1").run_id

    sign_in(monkeypatch, *accounts["reader"])
    refused = refusal(
        lambda: client(auth_server).create_model_version(
            registered, f"runs:/{run_id}/prompts/extra", run_id=run_id
        )
    )

    assert refused.get_http_status_code() == 403
    sign_in(monkeypatch, *SERVICE)
    assert [
        v.version for v in client(auth_server).search_model_versions(f"name='{registered}'")
    ] == ["1"]


def test_registry_ui_holds_manage_on_the_models_and_experiment_it_creates(
    as_registry_ui, auth_server, monkeypatch, unique_name
):
    registered = register_and_release(unique_name())
    experiment = client(auth_server).get_experiment_by_name(gateway.REGISTRATION_EXPERIMENT)

    sign_in(monkeypatch, *ADMIN)
    auth = setup_accounts.auth_client(auth_server.url)
    on_model = auth.get_user_permission(SERVICE[0], "registered_model", registered)
    on_experiment = auth.get_user_permission(SERVICE[0], "experiment", experiment.experiment_id)
    reader_on_model = auth.get_user_permission("runtime-reader", "registered_model", registered)

    assert (on_model.permission, on_experiment.permission) == ("MANAGE", "MANAGE")
    assert reader_on_model.permission == "READ"


def test_registration_runs_record_the_mlflow_account_beside_the_actor(
    as_registry_ui, auth_server, unique_name
):
    registered = register_and_release(unique_name())

    mlflow = client(auth_server)
    run = mlflow.get_run(mlflow.get_model_version(registered, "1").run_id)

    assert run.data.tags["registry_ui.registered_by"] == "alice"
    assert run.data.tags["registry_ui.mlflow_account"] == "registry-ui-svc"
    assert run.data.tags["mlflow.user"] == "registry-ui-svc"  # the server keeps what we send


def test_without_a_server_the_run_names_the_actor_and_no_account(
    sqlite_registry_uri, monkeypatch, unique_name
):
    sign_in(monkeypatch, *SERVICE)  # credentials that a local store never sees
    name = unique_name()
    PromptModel.register_many([PromptModel(name, "Hi {x}", "1.0.0", metadata={"author": "bob"})])

    mlflow = MlflowClient(tracking_uri=sqlite_registry_uri, registry_uri=sqlite_registry_uri)
    run = mlflow.get_run(mlflow.get_model_version(to_registered_model_name(name), "1").run_id)

    assert run.data.tags["mlflow.user"] == run.data.tags["registry_ui.registered_by"] == "bob"
    assert "registry_ui.mlflow_account" not in run.data.tags


def test_the_check_names_another_account_granted_edit_on_a_registry_ui_model(
    as_registry_ui, auth_server, monkeypatch, unique_name, capsys
):
    registered = register_and_release(unique_name())
    sign_in(monkeypatch, *ADMIN)
    auth = setup_accounts.auth_client(auth_server.url)
    other = ("other-team", secrets.token_urlsafe(18))
    auth.create_user(*other)
    auth.grant_user_permission(other[0], "registered_model", registered, "EDIT")

    found = setup_accounts.main(["--tracking-uri", auth_server.url, "check"])
    sign_in(monkeypatch, *other)
    client(auth_server).set_model_version_tag(registered, "1", "registry_ui.stage", "dev")

    assert found == 1
    assert f"{registered}: also writable by other-team (EDIT)" in capsys.readouterr().out
    # Why it must not be granted: EDIT edits registry_ui's tags (and moves aliases).
    assert client(auth_server).get_model_version(registered, "1").tags["registry_ui.stage"] == "dev"
    sign_in(monkeypatch, *ADMIN)
    auth.revoke_user_permission(other[0], "registered_model", registered)
    assert setup_accounts.main(["--tracking-uri", auth_server.url, "check"]) == 0


def test_setting_up_the_service_account_again_gives_it_models_created_before(
    auth_server, accounts, monkeypatch, capsys
):
    """A registry written before authentication was on: its models are nobody's."""
    sign_in(monkeypatch, *ADMIN)
    registered = f"t.before-auth-{secrets.token_hex(4)}"
    client(auth_server).create_registered_model(
        registered, tags={setup_accounts.TAG_KIND: setup_accounts.KIND_PROMPT_TEMPLATE}
    )
    auth = setup_accounts.auth_client(auth_server.url)
    before = auth.get_user_permission(SERVICE[0], "registered_model", registered).permission

    monkeypatch.setenv("REGISTRY_UI_MLFLOW_PASSWORD", SERVICE[1])
    done = setup_accounts.main(["--tracking-uri", auth_server.url, "service"])

    assert (before, done) == ("READ", 0)
    assert f"registered model {registered}" in capsys.readouterr().out
    after = auth.get_user_permission(SERVICE[0], "registered_model", registered).permission
    assert after == "MANAGE"


def test_the_script_uses_registry_ui_own_names():
    assert setup_accounts.EXPERIMENTS == (
        gateway.REGISTRATION_EXPERIMENT,
        gateway.EXPERIMENT_METRICS_EXPERIMENT,
    )
    assert (setup_accounts.TAG_KIND, setup_accounts.KIND_PROMPT_TEMPLATE) == (
        gateway.TAG_KIND,
        gateway.KIND_PROMPT_TEMPLATE,
    )
