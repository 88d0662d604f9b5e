"""MLflow registry webhooks: verify MLflow's HMAC signature, refuse a replay, then sync the
template at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registry_ui.core.limits import loads_json
from registry_ui.core.names import InvalidNameError, from_registered_model_name
from registry_ui.web.models import WebhookDelivery
from registry_ui.web.prompts.tasks import sync_native_prompt, sync_template

logger = logging.getLogger("registry_ui.webhooks")


EVENTS = (
    "model_version.created",
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.set",
    "model_version_tag.deleted",
)


# A delivery's timestamp may be this far from now, either way.
TOLERANCE_SECONDS = 300
# A delivery id is remembered this long: a delivery stamped up to TOLERANCE_SECONDS ahead
# stays acceptable until that much after its stamp, and a minute covers clocks and slow requests.
REMEMBER_SECONDS = 2 * TOLERANCE_SECONDS + 60


class BadDelivery(ValueError):
    pass


class ReplayedDelivery(BadDelivery):
    pass


def verify_signature(
    *,
    secret: str,
    delivery_id: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise BadDelivery unless MLflow signed exactly this body recently with our secret."""
    if not (delivery_id and timestamp and signature):
        raise BadDelivery("missing X-MLflow-Delivery-Id, X-MLflow-Timestamp or X-MLflow-Signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise BadDelivery("X-MLflow-Timestamp is not unix seconds") from None
    if abs((now or time.time()) - sent_at) > tolerance:
        raise BadDelivery(f"X-MLflow-Timestamp is more than {tolerance}s away from now")
    version, _, given = signature.partition(",")
    if version != "v1" or not given:
        raise BadDelivery("X-MLflow-Signature must be 'v1,<base64 HMAC-SHA256>'")
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, given.encode()):
        raise BadDelivery("signature does not match")
    if len(delivery_id) > WebhookDelivery._meta.get_field("delivery_id").max_length:
        raise BadDelivery("X-MLflow-Delivery-Id is longer than 200 characters")


def refuse_replay(delivery_id: str) -> None:
    """Remember a verified delivery's id; raise ReplayedDelivery if it was seen already.

    Within its timestamp's window a signed delivery would verify again: its id, which the
    signature covers, is what tells a replay. The unique row decides between two workers
    receiving it at once.
    """
    now = timezone.now()
    WebhookDelivery.objects.filter(
        received_at__lt=now - timedelta(seconds=REMEMBER_SECONDS)
    ).delete()
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(delivery_id=delivery_id, received_at=now)
    except IntegrityError:
        raise ReplayedDelivery(
            f"delivery {delivery_id} was received already: a repeated delivery is refused"
        ) from None


def native_prompt_named_in(payload: dict) -> str | None:
    """The prompt a prompt event (entity prompt, prompt_version, prompt_alias, ...) names;
    None for any other event."""
    if not isinstance(payload, dict) or not str(payload.get("entity", "")).startswith("prompt"):
        return None
    data = payload.get("data")
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name or len(name) > 500:
        raise BadDelivery("data.name (the prompt) is missing")
    return name


def template_named_in(payload: dict) -> str:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise BadDelivery("body must be a JSON object with 'data'")
    registered = payload["data"].get("name")
    if not isinstance(registered, str):
        raise BadDelivery("data.name (the registered model) is missing")
    try:
        return from_registered_model_name(registered)
    except InvalidNameError as error:
        raise BadDelivery(f"data.name: {error}") from None


@login_not_required  # authenticated by MLflow's HMAC signature instead
@csrf_exempt  # likewise
@require_POST
def mlflow_webhook(request: HttpRequest):
    secret = settings.MLFLOW_WEBHOOK_SECRET
    if not secret:
        return JsonResponse(
            {"error": "webhooks are not configured (MLFLOW_WEBHOOK_SECRET)"}, status=400
        )
    delivery_id = request.headers.get("X-MLflow-Delivery-Id", "")
    try:
        verify_signature(
            secret=secret,
            delivery_id=delivery_id,
            timestamp=request.headers.get("X-MLflow-Timestamp", ""),
            signature=request.headers.get("X-MLflow-Signature", ""),
            body=request.body,
        )
        refuse_replay(delivery_id)
    except ReplayedDelivery as error:
        logger.warning("refused an MLflow webhook delivery: %s", error)
        return JsonResponse({"error": str(error)}, status=409)
    except BadDelivery as error:
        logger.warning("refused an MLflow webhook delivery: %s", error)
        return JsonResponse({"error": str(error)}, status=400)
    try:
        payload = loads_json(request.body)
        prompt = native_prompt_named_in(payload)  # MLflow's own prompts (prompts/native.py)
        name = template_named_in(payload) if prompt is None else prompt
    except (BadDelivery, json.JSONDecodeError, UnicodeDecodeError) as error:
        logger.warning("refused an MLflow webhook delivery: %s", error)
        return JsonResponse({"error": str(error)}, status=400)
    if prompt is not None:
        sync_native_prompt.delay(prompt)
        return JsonResponse({"status": "accepted", "prompt": prompt}, status=202)
    sync_template.delay(name)
    return JsonResponse({"status": "accepted", "template": name}, status=202)
