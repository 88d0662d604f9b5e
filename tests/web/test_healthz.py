"""GET /healthz: the database for anyone; MLflow too (?deep=1) for staff or the health token,
and never a credential from MLflow's address or its error."""

import logging

import pytest

from registry_ui import prompt_model

pytestmark = pytest.mark.django_db

HEALTH_TOKEN = "health-token-for-the-monitoring-system"


@pytest.fixture
def health_token(settings):
    settings.HEALTHZ_TOKEN = HEALTH_TOKEN
    return HEALTH_TOKEN


@pytest.fixture
def mlflow_down_with_a_password(mlflow_sqlite_uri):
    """MLflow's address holds a password, and nothing answers there."""
    from tests.support.mlflow_server import free_port

    prompt_model.configure_mlflow_with_registry(
        f"http://svc:S3cretPassw0rd@127.0.0.1:{free_port()}"
    )
    yield "S3cretPassw0rd"
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def test_it_reports_the_database_without_signing_in(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_it_checks_mlflow_for_staff(client, root, registry_uri):
    client.force_login(root)

    response = client.get("/healthz?deep=1")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "mlflow": "ok"}


def test_it_checks_mlflow_for_a_caller_with_the_health_token(client, health_token, registry_uri):
    response = client.get("/healthz?deep=1", headers={"Authorization": f"Bearer {health_token}"})

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "mlflow": "ok"}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc"])
def test_it_refuses_a_deep_check_to_anyone_else(client, health_token, authorization, reader):
    headers = {"Authorization": authorization} if authorization else {}
    client.force_login(reader)  # signed in, but not staff

    response = client.get("/healthz?deep=1", headers=headers)

    assert response.status_code == 403
    assert response.json() == {
        "error": "deep health checks need a staff sign-in or the health token "
        "(Authorization: Bearer <HEALTHZ_TOKEN>); /healthz without deep=1 is open"
    }


def test_an_anonymous_deep_check_is_refused_without_calling_mlflow(
    client, mlflow_down_with_a_password
):
    response = client.get("/healthz?deep=1")

    assert response.status_code == 403
    assert mlflow_down_with_a_password not in response.text


def test_a_failed_mlflow_check_names_the_failure_without_the_password(
    client, root, mlflow_down_with_a_password, caplog
):
    client.force_login(root)

    with caplog.at_level(logging.WARNING):
        response = client.get("/healthz?deep=1")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["mlflow"].startswith("error: RegistryUnavailableError: ")
    assert "http://***@127.0.0.1:" in body["checks"]["mlflow"]
    assert mlflow_down_with_a_password not in response.text
    assert "health check: MLflow failed" in caplog.text
    assert mlflow_down_with_a_password not in caplog.text


def test_it_refuses_changes(client):
    assert client.post("/healthz").status_code == 405
