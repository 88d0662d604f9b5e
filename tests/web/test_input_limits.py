"""Input past the limits that protect the server is refused with 400 and the limit named, on
every endpoint that reads it (docs/security.md, "Limits on input"): JSON nested too deeply
on /versions/validate, /api/v1/outcomes and /webhooks/mlflow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from registry_ui.core.limits import MAX_JSON_DEPTH
from registry_ui.web.experiments import tokens
from tests.support.mirror_rows import HTMX, signed_in, template, version

pytestmark = pytest.mark.django_db
DEEP = "[" * 5000 + "]" * 5000
WEBHOOK_SECRET = "s3cret-for-tests"


def test_the_editor_refuses_metadata_nested_too_deeply(alice):
    client = signed_in(alice)
    draft = {"name": "t/deep", "version": "1.0.0", "template": "Hi {x}"}

    response = client.post("/versions/validate", {**draft, "metadata": '{"a": ' + DEEP + "}"})
    live = client.post(
        "/versions/validate", {**draft, "metadata": '{"a": ' + DEEP + "}"}, headers=HTMX
    )

    assert response.status_code == 400
    assert live.status_code == 400
    assert f"at most {MAX_JSON_DEPTH} levels are accepted" in response.text
    assert f"1:{6 + MAX_JSON_DEPTH}: lists and objects are nested" in live.text


def test_the_outcomes_api_refuses_a_body_nested_too_deeply(client, root):
    _, token = tokens.service_token_create(root, name="content-service")

    response = client.post(
        "/api/v1/outcomes",
        '{"events": ' + DEEP + "}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 400
    assert f"at most {MAX_JSON_DEPTH} levels are accepted" in response.json()["error"]


def test_the_mlflow_webhook_refuses_a_signed_body_nested_too_deeply(client, settings):
    settings.MLFLOW_WEBHOOK_SECRET = WEBHOOK_SECRET
    body = ('{"entity": "model_version", "data": ' + DEEP + "}").encode()
    delivery_id, timestamp = "deep-1", str(int(time.time()))
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    mac = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).digest()

    response = client.post(
        "/webhooks/mlflow",
        data=body,
        content_type="application/json",
        headers={
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": timestamp,
            "X-MLflow-Signature": "v1," + base64.b64encode(mac).decode(),
        },
    )

    assert response.status_code == 400
    assert f"at most {MAX_JSON_DEPTH} levels are accepted" in response.json()["error"]


def test_a_preview_value_nested_too_deeply_is_marked_beside_its_field(alice):
    row = version(template("t/deep-preview"), "1.0.0", "Hi {user[name]}")
    client = signed_in(alice)

    response = client.get(f"/templates/t/deep-preview/-/versions/{row.version}", {"v.user": DEEP})

    assert response.status_code == 200
    assert f"at most {MAX_JSON_DEPTH} levels are accepted" in response.text


def test_json_bodies_within_the_limit_are_read_as_before(client, root):
    _, token = tokens.service_token_create(root, name="content-service")

    response = client.post(
        "/api/v1/outcomes",
        json.dumps({"events": []}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code != 500
