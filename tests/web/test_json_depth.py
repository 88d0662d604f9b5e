"""JSON nested 5,000 deep is refused with the limit named, not answered with HTTP 500
(issue 16, Low): the editor's check, the outcomes API and MLflow's webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from registry_ui.core.limits import MAX_JSON_DEPTH
from registry_ui.web.experiments import tokens

pytestmark = pytest.mark.django_db
DEEP = "[" * 5000 + "]" * 5000
NAMED = f"nested more than {MAX_JSON_DEPTH} levels deep; at most {MAX_JSON_DEPTH} are accepted"


def test_the_editors_check_names_the_depth_limit_in_the_metadata_field(client, alice):
    client.force_login(alice)

    response = client.post(
        "/versions/validate",
        {"name": "t/deep", "version": "1.0.0", "template": "Hi {x}", "metadata": DEEP},
    )

    assert response.status_code == 200  # the editor shows what its check found, as for any error
    assert NAMED in response.text
    assert "1:65" in response.text


def test_the_outcomes_api_refuses_deep_json_with_400(client, root):
    _, raw = tokens.service_token_create(root, name="deep-service")

    response = client.post(
        "/api/v1/outcomes",
        '{"events": ' + DEEP + "}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 400
    assert NAMED in response.text


def test_mlflows_webhook_refuses_deep_json_with_400(client, settings):
    settings.MLFLOW_WEBHOOK_SECRET = secret = "deep-secret"
    raw = ('{"entity": "model_version", "data": ' + DEEP + "}").encode()
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"d-deep.{stamp}.".encode() + raw, hashlib.sha256)

    response = client.post(
        "/webhooks/mlflow",
        data=raw,
        content_type="application/json",
        headers={
            "X-MLflow-Delivery-Id": "d-deep",
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": "v1," + base64.b64encode(mac.digest()).decode(),
        },
    )

    assert response.status_code == 400
    assert NAMED in response.text
