import pytest
from django.contrib.auth.models import User

from registry_ui.prompt_model import PromptModel

pytestmark = pytest.mark.django_db


def test_it_asks_anonymous_visitors_to_sign_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_lists_templates_with_their_production_and_staging_versions(
    client, sqlite_registry_uri, unique_name
):
    name = unique_name("listed")
    v1, v2 = PromptModel.register_many(
        [PromptModel(name, "Hi {who}", "1.0.0"), PromptModel(name, "Hello {who}", "1.0.1")]
    )
    v1.promote_to_staging()
    v1.promote_to_production()
    v2.promote_to_staging()
    client.force_login(User.objects.create_user("alice"))

    response = client.get("/")

    assert response.status_code == 200
    row = next(t for t in response.context["templates"] if t.name == name)
    assert (row.production.version, row.staging.version) == ("1.0.0", "1.0.1")
    assert name in response.text


def test_it_escapes_template_names_and_says_when_the_registry_is_down(client, mlflow_sqlite_uri):
    from registry_ui import prompt_model
    from tests.support.mlflow_server import free_port

    client.force_login(User.objects.create_user("alice"))
    prompt_model.configure_mlflow_with_registry(f"http://127.0.0.1:{free_port()}")
    try:
        response = client.get("/")
    finally:
        prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)

    assert response.status_code == 200
    assert "The registry cannot be reached right now" in response.text
