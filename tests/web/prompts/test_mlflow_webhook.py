from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from registry_ui.prompt_model import PromptModel
from registry_ui.web.models import AuditEvent, TemplateVersion

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sqlite_registry_uri")]
SECRET = "s3cret-for-tests"


@pytest.fixture(autouse=True)
def webhook_secret(settings, in_process_tasks):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET


def deliver(client, body: dict, *, secret=SECRET, timestamp=None, delivery_id="d-1", tamper=b""):
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + raw, hashlib.sha256)
    return client.post(
        "/webhooks/mlflow",
        data=raw + tamper,
        content_type="application/json",
        headers={
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": timestamp,
            "X-MLflow-Signature": "v1," + base64.b64encode(mac.digest()).decode(),
        },
    )


def created_event(name: str) -> dict:
    registered = name.replace("/", ".")
    return {"entity": "model_version", "action": "created", "timestamp": "now",
            "data": {"name": registered, "version": "1"}}  # fmt: skip


def test_a_signed_delivery_syncs_the_template_at_once(client, unique_name):
    name = unique_name()
    PromptModel(name, "Hi {who}", "1.0.0").register()

    response = deliver(client, created_event(name))

    assert response.status_code == 202
    assert TemplateVersion.objects.filter(template__name=name, version="1.0.0").exists()
    assert AuditEvent.objects.filter(object_id=f"{name}@1.0.0", source="external").exists()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"secret": "wrong"}, "signature does not match"),
        ({"tamper": b" "}, "signature does not match"),
        ({"timestamp": 1}, "more than 300s away"),
        ({"timestamp": "soon"}, "not unix seconds"),
    ],
)
def test_a_delivery_that_is_not_signed_by_mlflow_now_changes_nothing(
    client, unique_name, kwargs, problem
):
    name = unique_name()
    PromptModel(name, "Hi {who}", "1.0.0").register()

    response = deliver(client, created_event(name), **kwargs)

    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert not TemplateVersion.objects.filter(template__name=name).exists()


def test_a_delivery_without_signature_headers_is_refused(client):
    response = client.post("/webhooks/mlflow", data=b"{}", content_type="application/json")

    assert response.status_code == 400
    assert "missing" in response.json()["error"]


def test_a_signed_body_without_a_model_name_is_refused(client):
    response = deliver(client, {"entity": "model_version", "data": {}})

    assert response.status_code == 400
    assert "data.name" in response.json()["error"]
