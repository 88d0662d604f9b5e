"""Which version held production when, from the audit trail (audit_production)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import CharField
from django.db.models.functions import Cast
from django.utils import timezone

from registry_ui.web.models import AuditEvent, PromotionRequest, starts_with

_VERSION_ACTIONS = ("version.registered", "version.stage_changed")


_PRODUCTION = "production"


def production_history(template_name: str) -> list[dict]:
    """Every period a version of this template held production, oldest first.

    Each: version, since, until (None while it holds), moved_by and source (of the stage
    move), and, when an approved request carried the move out, why (its justification),
    request_id and approved_by. A request's "request.executed" event is written right after
    its stage move, so it explains the period it follows when it names the same version.
    """
    prefix = f"{template_name}@"
    moves = AuditEvent.objects.filter(
        starts_with("object_id", prefix),
        object_type="template_version",
        action__in=_VERSION_ACTIONS,
    ).values_list("seq", "at", "actor", "source", "object_id", "before", "after")
    # The template's own production requests' events (an index on object_id), not every
    # executed request's JSON read to find its template (that grew with the history).
    own = (
        PromotionRequest.objects.filter(template__name=template_name)
        .annotate(key=Cast("pk", CharField()))
        .values("key")
    )
    requests = [
        (seq, object_id, after)
        for seq, object_id, action, after in AuditEvent.objects.filter(
            object_type="promotion_request", object_id__in=own
        ).values_list("seq", "object_id", "action", "after")
        if action == "request.executed"
        and isinstance(after, dict)
        and after.get("template") == template_name
        and after.get("target_stage") == _PRODUCTION
    ]
    timeline = sorted(
        [("move", *row) for row in moves] + [("request", *row) for row in requests],
        key=lambda item: item[1],
    )
    history: list[dict] = []
    current: dict | None = None
    for kind, _seq, *rest in timeline:
        if kind == "request":
            request_id, after = rest
            if _holds(current, after.get("version")) and not current["request_id"]:
                current["why"] = after.get("justification")
                current["request_id"] = int(request_id) if request_id.isdigit() else request_id
                current["approved_by"] = list(after.get("approved_by") or [])
            continue
        at, actor, source, object_id, before, after = rest
        version = object_id[len(prefix) :]
        was = before.get("stage") if isinstance(before, dict) else None
        now = after.get("stage") if isinstance(after, dict) else None
        if now == _PRODUCTION and was != _PRODUCTION:
            if _holds(current, version):
                continue  # already known to hold production
            if current:
                current["until"] = at
            current = {
                "version": version,
                "since": at,
                "until": None,
                "moved_by": actor,
                "source": source,
                "why": None,
                "request_id": None,
                "approved_by": [],
            }
            history.append(current)
        elif was == _PRODUCTION and now != _PRODUCTION and _holds(current, version):
            current["until"] = at
            current = None
    return history


def _holds(period: dict | None, version: str | None) -> bool:
    return period is not None and period["version"] == version


def production_at(template_name: str, when: datetime) -> dict | None:
    """The version of this template in production at `when`, who moved it there and why."""
    if timezone.is_naive(when):
        when = when.replace(tzinfo=UTC)
    for period in reversed(production_history(template_name)):
        if period["since"] <= when and (period["until"] is None or when < period["until"]):
            return {key: value for key, value in period.items() if key != "until"}
    return None
