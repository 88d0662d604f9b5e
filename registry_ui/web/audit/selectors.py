"""Reads for the audit log page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry_ui.web.audit.filters import filter_events
from registry_ui.web.models import AuditEvent

EVENTS_PER_PAGE = 50


@dataclass(frozen=True)
class AuditFilters:
    template: str = ""
    actor: str = ""
    action: str = ""
    source: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_events(filters: AuditFilters, *, before: int | None = None):
    """A page of events, newest first, by keyset on seq: (events, the seq to go on from).

    One query whatever the page: ``before`` is the smallest seq already shown.
    """
    events = filter_events(
        AuditEvent.objects.order_by("-seq"),
        template=filters.template,
        actor=filters.actor,
        action=filters.action,
        source=filters.source,
        since=filters.since,
        until=filters.until,
    )
    if before is not None:
        events = events.filter(seq__lt=before)
    found = list(events[: EVENTS_PER_PAGE + 1])
    more = len(found) > EVENTS_PER_PAGE
    found = found[:EVENTS_PER_PAGE]
    return found, (found[-1].seq if more else None)


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
