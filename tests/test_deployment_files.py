"""docker-compose.yml can't be run here (no Docker engine): check its shape instead."""

import configparser
from pathlib import Path

import yaml

from tests.support.mlflow_server import MLFLOW_SITE, SERVER_WORKERS

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_it_defines_every_service_of_a_deployment():
    services = compose()["services"]

    assert {"postgres", "redis", "minio", "mlflow", "web", "worker", "beat"} <= set(services)


def test_web_worker_and_beat_run_from_one_image_with_their_commands():
    services = compose()["services"]

    assert services["web"]["build"] == services["worker"]["build"] == services["beat"]["build"]
    assert services["web"]["command"][:2] == ["gunicorn", "registry_ui.wsgi"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "registry_ui.celery", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "registry_ui.celery", "beat"]


def test_mlflow_uses_postgresql_and_s3_compatible_artifacts():
    command = " ".join(compose()["services"]["mlflow"]["command"])

    assert '--backend-store-uri "postgresql+psycopg://' in command
    assert "--artifacts-destination s3://" in command
    assert "MLFLOW_S3_ENDPOINT_URL" in compose()["services"]["mlflow"]["environment"]


def test_mlflow_runs_as_many_server_workers_as_the_benchmarks_and_tests_start():
    command = " ".join(compose()["services"]["mlflow"]["command"]).split()

    workers = command[command.index("--workers") + 1]

    assert workers == str(SERVER_WORKERS)


def test_the_mlflow_image_turns_tcp_nodelay_on_for_its_uvicorn_workers():
    dockerfile = (ROOT / "docker" / "mlflow.Dockerfile").read_text()

    assert (
        "COPY docker/mlflow-site/sitecustomize.py /opt/mlflow-site/sitecustomize.py" in dockerfile
    )
    assert "ENV PYTHONPATH=/opt/mlflow-site" in dockerfile
    assert MLFLOW_SITE == ROOT / "docker" / "mlflow-site"  # what the tests' servers use


def test_long_running_services_have_healthchecks():
    services = compose()["services"]

    for name in ("postgres", "redis", "minio", "mlflow", "web", "worker"):
        assert "healthcheck" in services[name], name


def test_no_secret_is_written_in_the_file():
    services = compose()["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "KEY")):
                assert str(value).startswith("${") or value == "", (name, key, value)


def test_the_app_points_at_the_services_it_runs_with():
    env = compose()["services"]["web"]["environment"]

    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["DEBUG"] == "false"


def test_the_audit_heads_live_on_a_volume_the_database_does_not_mount():
    services = compose()["services"]
    env = services["web"]["environment"]
    folder = env["AUDIT_HEAD_FILE"].rsplit("/", 1)[0]

    assert env["AUDIT_HMAC_KEY"].startswith("${AUDIT_HMAC_KEY:?")  # required, never written
    assert f"audit-heads:{folder}" in services["worker"]["volumes"]  # the task runs there
    assert f"audit-heads:{folder}:ro" in services["web"]["volumes"]  # verify_audit_log reads
    assert not any("audit-heads" in v for v in services["postgres"].get("volumes", []))
    assert f"mkdir -p {folder}" in (ROOT / "Dockerfile").read_text()


def test_mlflow_runs_its_built_in_authentication_with_the_config_from_docker():
    mlflow = compose()["services"]["mlflow"]
    command = " ".join(mlflow["command"]).split()

    assert command[command.index("--app-name") + 1] == "basic-auth"
    assert mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow-auth/basic_auth.ini"
    assert "./docker/mlflow-auth:/etc/mlflow-auth:ro" in mlflow["volumes"]
    assert "mlflow-auth-data:/var/lib/mlflow-auth" in mlflow["volumes"]


def test_the_auth_config_lets_accounts_read_only_and_holds_no_password():
    config = configparser.ConfigParser()
    config.read(ROOT / "docker" / "mlflow-auth" / "basic_auth.ini")
    auth = config["mlflow"]

    assert auth["default_permission"] == "READ"
    assert auth["database_uri"] == "sqlite:////var/lib/mlflow-auth/basic_auth.db"  # the volume
    assert "admin_password" not in auth  # MLFLOW_AUTH_ADMIN_PASSWORD, on the first start
    assert int(auth["auth_cache_ttl_seconds"]) > 0  # or every request hashes the password


def test_the_app_talks_to_mlflow_as_its_service_account():
    services = compose()["services"]
    hosts = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]

    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["MLFLOW_TRACKING_USERNAME"] == "${REGISTRY_UI_MLFLOW_USERNAME:-registry-ui-svc}"
        assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${REGISTRY_UI_MLFLOW_PASSWORD:?")
    assert "mlflow:5000" in hosts  # MLflow refuses other Host headers than localhost's


def test_the_mlflow_image_installs_the_auth_app():
    # The basic-auth app refuses to start without the auth extra (Flask-WTF).
    dockerfile = (ROOT / "docker" / "mlflow.Dockerfile").read_text()

    assert '"mlflow[auth]==' in dockerfile
