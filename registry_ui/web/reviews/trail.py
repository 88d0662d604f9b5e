"""How the reviews write down what happens to a request: its audit events, its notifications,
and closing it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from registry_ui.core.limits import MAX_TEXT
from registry_ui.web.audit import trail
from registry_ui.web.models import PromotionRequest
from registry_ui.web.reviews.tasks import queue_notification

Status = PromotionRequest.Status
Kind = PromotionRequest.Kind


def audit_request(actor: str, action: str, request: PromotionRequest, after: dict, source: str):
    trail.record(
        actor=actor,
        action=action,
        object_type="promotion_request",
        object_id=str(request.pk),
        before=None,
        after=after,
        source=source,
    )


def describe(request: PromotionRequest) -> dict:
    if request.kind == Kind.RELEASE:
        return {
            "kind": request.kind,
            "items": [
                {
                    "template": i.template.name,
                    "version": i.version.version,
                    "target": i.target_stage,
                }
                for i in request.items.select_related("template", "version")
            ],
        }
    return {
        "kind": request.kind,
        "template": request.template.name,
        "version": request.version.version,
        "target_stage": request.target_stage,
        "content_sha256": request.content_sha256,
    }


def announce(request: PromotionRequest, event: str) -> None:
    """Notify about the request once the transaction commits (emails and webhook go out
    from a worker)."""
    request_id = request.pk
    transaction.on_commit(lambda: queue_notification(request_id, event))


def close(request, status, outcome, *, actor, source, items_too=True) -> None:
    request.status = status
    request.outcome = outcome[:MAX_TEXT]
    request.decided_at = request.decided_at or timezone.now()
    if status in (Status.DONE, Status.FAILED):
        request.finished_at = timezone.now()
    request.save(update_fields=["status", "outcome", "decided_at", "finished_at"])
    if items_too and request.kind == Kind.RELEASE:
        request.items.filter(status__in=PromotionRequest.ACTIVE).update(
            status=status, outcome=outcome[:MAX_TEXT], decided_at=request.decided_at
        )
    audit_request(actor, f"request.{status}", request, {"outcome": outcome}, source)
    announce(request, status)
