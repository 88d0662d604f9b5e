"""Notifications about promotion requests: in-app counts, email and an outgoing webhook.

In-app, registry_ui.web.reviews.inbox.review_inbox shows reviewers how many requests
wait for them. Email and the webhook go out from workers, after the change committed: a
failure to notify is logged and never fails or undoes the request itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone

from registry_ui.web.models import NativeAliasRequest, PromotionRequest

logger = logging.getLogger("registry_ui.notify")


Status = PromotionRequest.Status


Kind = PromotionRequest.Kind


REVIEW_EVENTS = frozenset({"filed", "approved"})


DECIDED = {
    "executing": "was approved and is being carried out",
    "done": "was carried out",
    "failed": "failed",
    "rejected": "was rejected",
    "stale": "was closed as stale",
    "withdrawn": "was withdrawn",
}


EVENTS = REVIEW_EVENTS | DECIDED.keys()


SUBJECT_PREFIX = "[registry_ui] "


TIMESTAMP_HEADER = "X-Registry-UI-Timestamp"


SIGNATURE_HEADER = "X-Registry-UI-Signature"


WEBHOOK_TIMEOUT_SECONDS = 5


class WebhookUnavailable(Exception):
    """The receiver could not be reached, timed out or answered 5xx/429: retried later."""


def deliver(request_id: int, event: str) -> dict | None:
    """Email one request event (in a worker); returns the webhook's "request" object when a
    webhook is configured (the task queues its delivery), else None."""
    if event not in EVENTS:
        raise ValueError(f"unknown request event {event!r}: expected one of {sorted(EVENTS)}")
    request = (
        PromotionRequest.objects.select_related("template", "version", "requester")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        logger.warning("request #%s no longer exists: no %s notification", request_id, event)
        return None
    # A release's items are reviewed and decided as one: the release itself is notified.
    if request.release_id is None:
        if event in REVIEW_EVENTS:
            messages = review_messages(request)
        else:
            messages = decision_messages(request, event)
        _send(messages, f"request #{request.pk}", event)
    if settings.NOTIFY_WEBHOOK_URL:
        return webhook_request(request)
    return None


def request_url(request_id: int) -> str:
    return f"{settings.SITE_URL}/requests/{request_id}/"


def reviewers_to_ask(request: PromotionRequest) -> list:
    """Active reviewers who may still approve: not the requester, an author, or an approver."""
    User = get_user_model()
    authors = [name for name in request.version_authors.split(",") if name]
    email_field = User.get_email_field_name()
    return list(
        User.objects.with_perm(
            "registry_web.approve_promotion", is_active=True, include_superusers=True
        )
        .exclude(pk=request.requester_id)
        .exclude(**{f"{User.USERNAME_FIELD}__in": authors})
        .exclude(pk__in=request.approvals.values("reviewer_id"))
        .exclude(**{email_field: ""})
        .order_by(User.USERNAME_FIELD)
    )


def review_messages(request: PromotionRequest) -> list[EmailMessage]:
    if request.status != Status.OPEN:
        return []  # decided before this worker got to it: nobody can act on it any more
    subject = _subject(f"Review needed: {_title(request)}")
    body = _review_body(request)
    email_field = get_user_model().get_email_field_name()
    return [
        EmailMessage(subject, body, to=[getattr(reviewer, email_field)])
        for reviewer in reviewers_to_ask(request)
    ]


def decision_messages(request: PromotionRequest, event: str) -> list[EmailMessage]:
    address = getattr(request.requester, request.requester.get_email_field_name(), "")
    if not address:
        return []
    lines = [f"Your request {_title(request)} {DECIDED[event]}.", ""]
    # While executing, the row may already hold the outcome of the run, told by its own email.
    if request.outcome and event != "executing":
        lines += ["Outcome:", request.outcome, ""]
    lines.append(f"Details: {request_url(request.pk)}")
    subject = _subject(f"{_title(request)}: {event}")
    return [EmailMessage(subject, "\n".join(lines) + "\n", to=[address])]


def _review_body(request: PromotionRequest) -> str:
    requester = request.requester.get_username()
    if request.kind == Kind.RELEASE:
        items = list(request.items.select_related("template", "version").order_by("id"))
        lines = [f"{requester} asks for a review of release #{request.pk}:"]
        for item in items:
            gate = f" (metric gate: {_gate(item.gate)})" if item.gate else ""
            lines.append(
                f"  - {item.template.name} {item.version.version} -> {item.target_stage}{gate}"
            )
    elif request.kind == Kind.ROLLBACK:
        lines = [
            f"{requester} asks to roll production of {request.template.name} back to "
            f"{request.version.version} (#{request.pk})."
        ]
    else:
        lines = [
            f"{requester} asks to move {request.template.name} {request.version.version} from "
            f"{request.from_stage} to {request.target_stage} (#{request.pk})."
        ]
    lines += [
        "",
        "Justification:",
        request.justification,
        "",
        f"Approvals: {request.valid_approvals()} of {request.required_approvals}",
    ]
    if request.gate:
        lines.append(f"Metric gate: {_gate(request.gate)}")
    lines += ["", f"Review it: {request_url(request.pk)}"]
    return "\n".join(lines) + "\n"


def _title(request: PromotionRequest) -> str:
    if request.kind == Kind.RELEASE:
        return f"release #{request.pk} ({request.items.count()} templates)"
    return request.label


def _gate(gate: dict) -> str:
    return f"{gate.get('status')}: {gate.get('detail')}"


def _subject(text: str) -> str:
    # Header injection: no newline of user text (or of anything else) reaches the header.
    return SUBJECT_PREFIX + " ".join(text.split())[:200]


# -- native prompts' alias requests (prompts/native.py announces them) -----------------------

NATIVE_EVENTS = frozenset({"filed", "approved", "done", "failed"})


def deliver_native(request_id: int, event: str) -> int:
    """Email one event of a native prompt's alias request: reviewers who may still approve
    it when it is filed or approved (still open); the requester when it is done or failed.
    Returns the number of emails sent."""
    if event not in NATIVE_EVENTS:
        raise ValueError(f"unknown alias request event {event!r}: expected {sorted(NATIVE_EVENTS)}")
    request = NativeAliasRequest.objects.select_related("prompt").filter(pk=request_id).first()
    if request is None:
        logger.warning("alias request %s no longer exists: no %s notification", request_id, event)
        return 0
    User = get_user_model()
    email_field = User.get_email_field_name()
    what = f"native prompt {request.prompt.name}: {request.alias} to {request.semver}"
    url = f"{settings.SITE_URL}/native-prompts/{quote(request.prompt.name)}#requests-h"
    if event in ("filed", "approved"):
        if request.state != NativeAliasRequest.State.OPEN:
            return 0  # decided before this worker got to it: nobody can act on it any more
        reviewers = (
            User.objects.with_perm(
                "registry_web.approve_promotion", is_active=True, include_superusers=True
            )
            .exclude(**{User.USERNAME_FIELD: request.requested_by})
            .exclude(**{f"{User.USERNAME_FIELD}__in": request.approvals})
            .exclude(**{email_field: ""})
            .order_by(User.USERNAME_FIELD)
        )
        lines = [
            f"{request.requested_by} asks to move {request.alias} of the native MLflow prompt "
            f"{request.prompt.name} to {request.semver} (MLflow version {request.number}).",
            f"Why: {request.reason or '(no reason given)'}",
        ]
        if request.bump_override:
            lines.append(f"A smaller bump than the diff needs, accepted: {request.bump_override}")
        if request.checks_override:
            lines.append(f"Failing test cases, accepted: {request.checks_override}")
        lines += [
            f"Approvals so far: {', '.join(request.approvals) or 'none'}",
            "",
            f"Review it: {url}",
        ]
        subject = _subject(f"Review needed: {what}")
        messages = [
            EmailMessage(subject, "\n".join(lines) + "\n", to=[getattr(r, email_field)])
            for r in reviewers
        ]
    else:
        requester = User.objects.filter(**{User.USERNAME_FIELD: request.requested_by}).first()
        address = getattr(requester, email_field, "") if requester else ""
        if not address:
            return 0
        outcome = "was carried out" if event == "done" else "failed"
        lines = [
            f"Your request to move {what} {outcome}.",
            "",
            request.result,
            "",
            f"Details: {url}",
        ]
        messages = [
            EmailMessage(_subject(f"{what}: {event}"), "\n".join(lines) + "\n", to=[address])
        ]
    _send(messages, f"alias request {request.pk} ({request})", event)
    return len(messages)


def _send(messages: list[EmailMessage], about: str, event: str) -> None:
    if not messages:
        return
    try:
        get_connection(fail_silently=False).send_messages(messages)
    except Exception:  # any backend, any failure: the request already happened
        logger.exception(
            "could not email %d recipient(s) about the %s of %s",
            len(messages),
            event,
            about,
        )


def webhook_request(request: PromotionRequest) -> dict:
    """The "request" object of a webhook body (also the stored contract for receivers)."""
    data = {
        "id": request.pk,
        "kind": request.kind,
        "template": request.template.name if request.template_id else None,
        "version": request.version.version if request.version_id else None,
        "target_stage": request.target_stage or None,
        "status": request.status,
        "requester": request.requester.get_username(),
        "outcome": request.outcome,
        "url": request_url(request.pk),
    }
    if request.kind == Kind.RELEASE:
        data["items"] = [
            {
                "template": item.template.name,
                "version": item.version.version,
                "target_stage": item.target_stage,
            }
            for item in request.items.select_related("template", "version").order_by("id")
        ]
    return data


def sign(secret: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def post_webhook(event: str, request_data: dict) -> int:
    """POST one signed event; raises WebhookUnavailable when it is worth retrying."""
    url = settings.NOTIFY_WEBHOOK_URL
    if not url:
        logger.info("NOTIFY_WEBHOOK_URL was unset since %s was queued: not sent", event)
        return 0
    # Chat webhook URLs often carry their token in the path: logs name the host only.
    host = urlsplit(url).hostname
    timestamp = str(int(time.time()))  # per attempt, so receivers can refuse old replays
    body = json.dumps(
        {"event": event, "request": request_data, "sent_at": timezone.now().isoformat()},
        separators=(",", ":"),
    )
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(settings.NOTIFY_WEBHOOK_SECRET, timestamp, body),
    }
    try:
        response = requests.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,  # a redirect would resend the signed body elsewhere
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        # Not chained: requests' messages repeat the full URL, token included.
        raise WebhookUnavailable(f"{event} to {host}: {type(error).__name__}") from None
    status = response.status_code
    # 429 is a 4xx that asks to come back later, so it is retried like a 5xx.
    if status >= 500 or status == 429:
        raise WebhookUnavailable(f"{event} to {host}: answered {status}")
    if status >= 300:
        logger.warning("the webhook at %s refused %s with %s: not retried", host, event, status)
    return status
