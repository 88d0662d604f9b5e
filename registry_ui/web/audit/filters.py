"""Reading the audit log's filters from a query string, and applying them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import dateparse, timezone

from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.web.models import AuditEvent


def filter_events(
    events: QuerySet[AuditEvent],
    *,
    template: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The audit page's and the export's filters: a template's events are its versions' and
    those naming it in `after`; an action ending in "." is a prefix ("request." finds every
    request event); `since` is inclusive, `until` exclusive."""
    if template:
        events = events.filter(
            Q(object_id=template)
            | Q(object_id__startswith=f"{template}@")
            | Q(after__template=template)
        )
    if actor:
        events = events.filter(actor=actor)
    if action:
        if action.endswith("."):
            events = events.filter(action__startswith=action)
        else:
            events = events.filter(action=action)
    if source:
        events = events.filter(source=source)
    if since:
        events = events.filter(at__gte=since)
    if until:
        events = events.filter(at__lt=until)
    return events


FILTERS = ("template", "actor", "action", "source", "since", "until")


MAX_FILTER_LENGTH = 150  # an actor is a username; an action a dotted name such as request.


def read_filters(query: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The audit page's and the export's filters from a query: (the values given, checked and
    parsed, for filter_events; an error message by filter name for the others)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    text = {key: (query.get(key) or "").strip() for key in FILTERS}
    if text["template"]:
        try:
            values["template"] = validate_template_name(text["template"])
        except InvalidNameError as error:
            errors["template"] = str(error)
    for key in ("actor", "action"):
        if len(text[key]) > MAX_FILTER_LENGTH:
            errors[key] = f"{key} is longer than {MAX_FILTER_LENGTH} characters"
        elif text[key]:
            values[key] = text[key]
    if text["source"]:
        if text["source"] in AuditEvent.Source.values:
            values["source"] = text["source"]
        else:
            errors["source"] = f"source {text['source'][:40]!r} is not one of: " + ", ".join(
                AuditEvent.Source.values
            )
    for key in ("since", "until"):
        if text[key]:
            try:
                values[key] = parse_moment(text[key], name=key, end_of_day=key == "until")
            except ValueError as error:
                errors[key] = str(error)
    if "since" in values and "until" in values and values["since"] >= values["until"]:
        errors["until"] = f"since={text['since']} is not before until={text['until']}"
    return values, errors


def parse_moment(text: str, *, name: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time; naive means UTC. A bare date is its midnight, or with
    ``end_of_day`` the next midnight (so until=2026-11-28 includes all of that day)."""
    accepted = (
        f"{name} takes an ISO 8601 date or date-time, e.g. 2026-11-28 or 2026-11-28T14:30:00Z"
    )
    try:
        # The date first: Python's fromisoformat reads a bare date as a date-time too.
        day = dateparse.parse_date(text)
        moment = None if day else dateparse.parse_datetime(text)
    except ValueError:  # well formed but impossible, e.g. month 13
        raise ValueError(f"{name}={text!r} is not a real date: {accepted}") from None
    if day is not None:
        moment = datetime.combine(day, time.min) + timedelta(days=1 if end_of_day else 0)
    if moment is None:
        raise ValueError(f"{name}={text!r} is not understood: {accepted}")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment
