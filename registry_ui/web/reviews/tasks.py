"""Celery tasks of the reviews: a request's notifications by email and webhook.

A failure to notify is logged and never fails or undoes the request itself.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import Retry

from registry_ui.web.reviews import notifications
from registry_ui.web.reviews.notifications import WebhookUnavailable

logger = logging.getLogger("registry_ui.notify")


def queue_notification(request_id: int, event: str) -> None:
    """Called after commit when a request is filed, approved or decided."""
    try:
        notify_request.delay(request_id, event)
    except Exception:  # a broker outage: the request happened; only this notice is lost
        logger.exception("could not queue the %s notification of request #%s", event, request_id)


@shared_task(name="registry_ui.web.tasks.notify_request", ignore_result=True)
def notify_request(request_id: int, event: str) -> None:
    request_data = notifications.deliver(request_id, event)
    if request_data is not None:
        _queue_webhook(request_id, event, request_data)


def queue_native_notification(sender=None, *, request_id: int, event: str, **kwargs) -> None:
    """Receiver of prompts.signals.native_request_event (after commit)."""
    try:
        notify_native_request.delay(request_id, event)
    except Exception:  # a broker outage: the request happened; only this notice is lost
        logger.exception(
            "could not queue the %s notification of alias request %s", event, request_id
        )


@shared_task(name="registry_ui.web.tasks.notify_native_request", ignore_result=True)
def notify_native_request(request_id: int, event: str) -> None:
    notifications.deliver_native(request_id, event)


def _queue_webhook(request_id: int, event: str, request_data: dict) -> None:
    try:
        send_webhook.delay(f"request.{event}", request_data)
    except Retry as retry:
        # In-process tasks (no REDIS_URL) that propagate errors cannot be retried later.
        logger.warning(
            "the webhook for the %s of request #%s failed and is not retried in-process: %s",
            event,
            request_id,
            retry.exc,
        )
    except Exception:  # a broker outage, or a failure of a task run in-process
        logger.exception("the webhook for the %s of request #%s failed", event, request_id)


@shared_task(
    name="registry_ui.web.tasks.send_webhook",
    ignore_result=True,
    autoretry_for=(WebhookUnavailable,),  # unreachable, timed out, 5xx or 429; not other 4xx
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_webhook(event: str, request_data: dict) -> int:
    """POST one signed request event to NOTIFY_WEBHOOK_URL (signed afresh on every attempt)."""
    return notifications.post_webhook(event, request_data)
