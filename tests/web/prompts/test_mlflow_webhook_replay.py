"""A signed MLflow webhook delivery is accepted once: sent again within its timestamp's
window (5 minutes either way), it is refused (issue 16)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from registry_ui.web.models import WebhookDelivery
from registry_ui.web.prompts import webhooks

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-replay-tests"


@pytest.fixture(autouse=True)
def webhook_secret(settings, monkeypatch):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    synced = []
    monkeypatch.setattr(webhooks.sync_template, "delay", synced.append)
    return synced


def signed(delivery_id: str, body: bytes) -> dict:
    timestamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }


BODY = json.dumps({"entity": "model_version", "data": {"name": "shop.hook", "version": "1"}})


def send(client, headers: dict):
    return client.post(
        "/webhooks/mlflow", data=BODY.encode(), content_type="application/json", headers=headers
    )


def test_a_delivery_sent_again_is_refused_and_syncs_nothing_more(client, webhook_secret):
    headers = signed(str(uuid.uuid4()), BODY.encode())

    first = send(client, headers)
    again = send(client, headers)

    assert first.status_code == 202
    assert again.status_code == 409
    assert "was received already: a repeated delivery is refused" in again.json()["error"]
    assert webhook_secret == ["shop/hook"]


def test_another_delivery_of_the_same_event_is_accepted(client, webhook_secret):
    send(client, signed(str(uuid.uuid4()), BODY.encode()))

    response = send(client, signed(str(uuid.uuid4()), BODY.encode()))

    assert response.status_code == 202
    assert webhook_secret == ["shop/hook", "shop/hook"]


def test_an_unsigned_delivery_is_not_remembered(client):
    delivery_id = str(uuid.uuid4())
    headers = signed(delivery_id, BODY.encode()) | {"X-MLflow-Signature": "v1,Zm9v"}

    assert send(client, headers).status_code == 400

    assert not WebhookDelivery.objects.filter(delivery_id=delivery_id).exists()
    assert send(client, signed(delivery_id, BODY.encode())).status_code == 202


def test_ids_are_forgotten_once_no_delivery_could_carry_them_any_more(client):
    old = WebhookDelivery.objects.create(
        delivery_id="long-ago",
        received_at=timezone.now() - timedelta(seconds=webhooks.REMEMBER_SECONDS + 1),
    )
    recent = WebhookDelivery.objects.create(
        delivery_id="a-minute-ago", received_at=timezone.now() - timedelta(minutes=1)
    )

    send(client, signed(str(uuid.uuid4()), BODY.encode()))

    remaining = set(WebhookDelivery.objects.values_list("delivery_id", flat=True))
    assert old.delivery_id not in remaining
    assert recent.delivery_id in remaining
    # Long enough for every timestamp the signature check still accepts.
    assert webhooks.REMEMBER_SECONDS > 2 * webhooks.TOLERANCE_SECONDS
