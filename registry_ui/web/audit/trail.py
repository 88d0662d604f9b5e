"""The audit trail: append events to the hash chain, and verify it.

Every state change is audited in its own transaction through record()/record_many(); atomic()
opens a transaction that takes the chain's lock before any row lock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

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
