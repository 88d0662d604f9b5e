"""The audit log as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime

from django.db.models import QuerySet

from registry_ui.web.audit.filters import filter_events
from registry_ui.web.models import AuditEvent

CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "source",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "prev_hash",
    "hash",
)


# Cells a spreadsheet would run as a formula (OWASP "CSV injection"; ASVS adds NUL).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def csv_safe(text: str) -> str:
    """Neutralise a cell that starts like a formula: a leading ' makes it plain text."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def events_for_export(**filters) -> QuerySet[AuditEvent]:
    """Events in chain order, filtered as the audit page filters them."""
    return filter_events(AuditEvent.objects.order_by("seq"), **filters)


def csv_lines(events: QuerySet[AuditEvent], *, chunk_size: int = 2000) -> Iterator[str]:
    """The header, then one CSV line per event, streamed from the database."""

    class Echo:
        def write(self, line: str) -> str:
            return line

    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for values in events.values_list(*CSV_COLUMNS).iterator(chunk_size=chunk_size):
        yield writer.writerow(
            [
                csv_safe(_csv_text(column, value))
                for column, value in zip(CSV_COLUMNS, values, strict=True)
            ]
        )


def _csv_text(column: str, value) -> str:
    if value is None:
        return ""
    if column in ("before", "after"):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)
