import pytest

from registry_ui import prompt_model

pytestmark = pytest.mark.django_db


def test_it_reports_the_database_without_signing_in(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_it_checks_mlflow_when_asked(client, registry_uri):
    response = client.get("/healthz?deep=1")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "mlflow": "ok"}


def test_it_answers_503_naming_the_failed_check_when_mlflow_is_down(client, mlflow_sqlite_uri):
    from tests.support.mlflow_server import free_port

    prompt_model.configure_mlflow_with_registry(f"http://127.0.0.1:{free_port()}")
    try:
        response = client.get("/healthz?deep=1")
    finally:
        prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["mlflow"].startswith("error:")


def test_it_refuses_changes(client):
    assert client.post("/healthz").status_code == 405
