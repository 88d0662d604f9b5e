"""The audit trail: every change is written here, and only here (append-only, hash-chained).

Each event stores the sha256 of the event before it (in ``seq`` order), so editing, inserting
or removing a row breaks the chain where it happened; ``verify_chain()`` walks it. The hash
covers a canonical JSON of the event (``event_hash``): that format is a stored contract,
since every row ever written is checked against it, so it must never change.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import dateparse, timezone

from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.web.models import AuditEvent

GENESIS_HASH = "0" * 64  # the prev_hash of the first event
HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "source",
    "prev_hash",
)
# Built once: json.dumps() with options builds a new encoder on every call.
_STORED_JSON = DjangoJSONEncoder()
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The PostgreSQL advisory lock serialising appends ("audt" in ASCII). Nothing else in the
# database may use this key.
_CHAIN_LOCK_KEY = 0x61756474


# -- writing ---------------------------------------------------------------------------------


def record(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    source: str,
    before=None,
    after=None,
) -> AuditEvent:
    """Append one event (inside the caller's transaction)."""
    return record_many(
        [
            AuditEvent(
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                before=before,
                after=after,
                source=source,
            )
        ]
    )[0]


def record_many(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Append unsaved events in order, chained after the last event.

    Joins the caller's transaction (or opens one). On PostgreSQL the chain lock is held from
    here until that transaction ends, so concurrent writers append one after the other
    instead of both after the same event; SQLite serialises write transactions already.
    A transaction that also locks rows after appending should call ``lock_chain()`` first,
    so every writer takes the locks in the same order.
    """
    events = list(events)
    if not events:
        return events
    with transaction.atomic(savepoint=False):
        lock_chain()
        seq, prev_hash = _chain_head()
        at = timezone.now()  # after the lock: one clock, so `at` grows with `seq`
        for event in events:
            seq += 1
            event.seq = seq
            event.at = at
            # What jsonb and SQLite's JSON give back, so the hash checks out when read.
            event.before = _json_round_trip(event.before)
            event.after = _json_round_trip(event.after)
            event.prev_hash = prev_hash
            event.hash = prev_hash = event_hash({f: getattr(event, f) for f in HASHED_FIELDS})
        return AuditEvent.objects.bulk_create(events, batch_size=1000)


@contextmanager
def atomic():
    """A transaction that appends to the audit trail and may lock rows.

    The chain lock is taken first, before any row lock, so every writer takes the locks in
    the same order: a transaction holding a row lock never waits for the chain while the
    chain's holder waits for that row (a deadlock PostgreSQL would abort).
    """
    with transaction.atomic():
        lock_chain()
        yield


def lock_chain() -> None:
    """Hold the append lock until the current transaction ends (PostgreSQL; else a no-op)."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(
            "lock_chain() must run inside transaction.atomic(): the lock ends with it"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def _chain_head() -> tuple[int, str]:
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return head or (0, GENESIS_HASH)


def _json_round_trip(value):
    if value is None:
        return None
    return json.loads(_STORED_JSON.encode(value))


def event_hash(values: Mapping[str, Any]) -> str:
    """The sha256 of an event's canonical JSON (the fields in HASHED_FIELDS)."""
    document = {name: values[name] for name in HASHED_FIELDS}
    document["at"] = values["at"].astimezone(UTC).isoformat(timespec="microseconds")
    document["before"] = _canonical_numbers(values["before"])
    document["after"] = _canonical_numbers(values["after"])
    text = _CANONICAL_JSON.encode(document)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _canonical_numbers(value):
    # jsonb keeps numbers as decimals and prints 1e20 as 100000000000000000000, which reads
    # back as an int: integral floats are hashed as the integer their decimal text names.
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(item) for item in value]
    return value


# -- verifying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    checked: int  # events found intact before the problem (all of them when ok)
    head_seq: int | None = None
    head_hash: str | None = None
    problem: str | None = None
    event_id: int | None = None  # the first event that does not check out
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(*, chunk_size: int = 2000) -> ChainCheck:
    """Walk the whole chain in seq order, streaming, and stop at the first broken link."""
    expected_seq, prev_hash, prev_where, checked = 1, GENESIS_HASH, None, 0
    rows = (
        AuditEvent.objects.order_by("seq")
        .values("id", "hash", *HASHED_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    for row in rows:
        where = f"event id {row['id']} (seq {row['seq']})"
        problem = None
        if row["seq"] != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if row["seq"] == expected_seq + 1
                else f"seq {expected_seq} to {row['seq'] - 1}"
            )
            problem = f"gap before {where}: {missing} missing (deleted or never committed)"
        elif row["prev_hash"] != prev_hash:
            before = f"the hash of {prev_where}" if prev_where else "the genesis hash"
            problem = (
                f"prev-hash mismatch at {where}: prev_hash {row['prev_hash']} "
                f"is not {before}, {prev_hash}"
            )
        else:
            computed = event_hash(row)
            if computed != row["hash"]:
                problem = (
                    f"content hash mismatch at {where}: its fields hash to {computed}, "
                    f"not the stored {row['hash']} (the row was changed after it was written)"
                )
        if problem:
            return ChainCheck(checked, problem=problem, event_id=row["id"], seq=row["seq"])
        checked += 1
        expected_seq, prev_hash, prev_where = row["seq"] + 1, row["hash"], where
    return ChainCheck(checked, head_seq=expected_seq - 1 or None, head_hash=prev_hash)


# -- exporting -------------------------------------------------------------------------------

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


def export_csv(events: QuerySet[AuditEvent], file: IO[str]) -> int:
    """Write these events to a text file as CSV; returns how many were written."""
    lines = csv_lines(events)
    file.write(next(lines))
    count = 0
    for line in lines:
        file.write(line)
        count += 1
    return count


def _csv_text(column: str, value) -> str:
    if value is None:
        return ""
    if column in ("before", "after"):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)


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


# -- questions -------------------------------------------------------------------------------

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
        object_type="template_version", object_id__startswith=prefix, action__in=_VERSION_ACTIONS
    ).values_list("seq", "at", "actor", "source", "object_id", "before", "after")
    requests = AuditEvent.objects.filter(
        action="request.executed",
        object_type="promotion_request",
        after__template=template_name,
        after__target_stage=_PRODUCTION,
    ).values_list("seq", "object_id", "after")
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
