"""The audit trail: append events to the keyed hash chain, and verify it.

Every state change is audited in its own transaction through record()/record_many(); atomic()
opens a transaction that takes the chain's lock before any row lock.

Each event's hash is an HMAC-SHA256 under AUDIT_HMAC_KEY (keys.py) of its fields and the hash
before it. Events written before the chain had a key (key_id "") keep their plain SHA-256 and
still verify, but only as the chain's beginning: once an event is keyed, an unkeyed one after
it is a rewrite by someone without the key. Deleting the newest events leaves a chain that
checks out, so verify_chain() also compares the heads published outside the database
(heads.py).
"""

from __future__ import annotations

import hashlib
import hmac
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

from registry_ui.web.audit import keys
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
# A keyed event's hash covers the key's id too, so no event can be moved under another key.
KEYED_FIELDS = (*HASHED_FIELDS, "key_id")


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
    key = keys.signing_key()  # before the lock: a missing key fails without waiting
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
            event.key_id = key.id
            values = {f: getattr(event, f) for f in KEYED_FIELDS}
            event.hash = prev_hash = event_hash(values, key=key.secret)
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


def has_events() -> bool:
    return AuditEvent.objects.exists()


def _chain_head() -> tuple[int, str]:
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return head or (0, GENESIS_HASH)


def _json_round_trip(value):
    if value is None:
        return None
    return json.loads(_STORED_JSON.encode(value))


def event_hash(values: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """An event's hash: the HMAC-SHA256 under ``key`` of its canonical JSON (KEYED_FIELDS).

    Without a key, the SHA-256 of HASHED_FIELDS alone: how events written before the chain
    had a key were hashed (migration 0002's format, kept so they still verify).
    """
    fields = HASHED_FIELDS if key is None else KEYED_FIELDS
    document = {name: values[name] for name in fields}
    document["at"] = values["at"].astimezone(UTC).isoformat(timespec="microseconds")
    document["before"] = _canonical_numbers(values["before"])
    document["after"] = _canonical_numbers(values["after"])
    text = _CANONICAL_JSON.encode(document).encode("utf-8", "surrogatepass")
    if key is None:
        return hashlib.sha256(text).hexdigest()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


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
    unkeyed: int = 0  # events from before the chain had a key, at its beginning
    key_ids: tuple[str, ...] = ()  # the keys the keyed events were hashed with
    heads_matched: int = 0  # published heads found in the chain as published

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Head:
    """A point of the chain known from outside the database: its seq and hash."""

    seq: int
    hash: str
    published: str = ""  # when and where it was published, for messages

    @property
    def described(self) -> str:
        return f"the head published {self.published}" if self.published else "the expected head"


def verify_chain(
    *, chunk_size: int = 2000, heads: Iterable[Head] = (), since: Head | None = None
) -> ChainCheck:
    """Walk the chain in seq order, streaming, and stop at the first broken link.

    Every event's hash is recomputed (under the key its key_id names); every head in
    ``heads`` must be in the chain as it was published, and none may lie past its end.
    ``since``: start at that head instead of the first event (it must still be there).
    """
    by_seq: dict[int, list[Head]] = {}
    for head in heads:
        by_seq.setdefault(head.seq, []).append(head)
    if since is not None:
        by_seq.setdefault(since.seq, []).append(since)
    known_keys = keys.verification_keys()
    walk = _Walk(known_keys, by_seq, start=since)
    rows = AuditEvent.objects.order_by("seq").values("id", "hash", *KEYED_FIELDS)
    if since is not None:
        rows = rows.filter(seq__gte=since.seq)
    for row in rows.iterator(chunk_size=chunk_size):
        problem = walk.step(row)
        if problem:
            return walk.result(problem=problem, event_id=row["id"], seq=row["seq"])
    return walk.finish()


class _Walk:
    """The state of one walk along the chain: what the next event must look like."""

    def __init__(self, known_keys: dict[str, bytes], heads: dict[int, list[Head]], start):
        self.known_keys, self.heads = known_keys, heads
        self.expected_seq = start.seq if start else 1
        self.prev_hash, self.prev_where = GENESIS_HASH, None
        self.checked = self.unkeyed = self.heads_matched = 0
        self.key_ids: list[str] = []
        self.start = start

    def step(self, row: dict) -> str | None:
        where = f"event id {row['id']} (seq {row['seq']})"
        problem = self._link_problem(row, where) or self._hash_problem(row, where)
        if problem:
            return problem
        for head in self.heads.get(row["seq"], ()):
            if head.hash != row["hash"]:
                return (
                    f"published head mismatch at {where}: {head.described} had hash "
                    f"{head.hash}, the chain now has {row['hash']} (rewritten since)"
                )
            self.heads_matched += 1
        self.checked += 1
        self.expected_seq, self.prev_hash, self.prev_where = row["seq"] + 1, row["hash"], where
        return None

    def _link_problem(self, row: dict, where: str) -> str | None:
        if row["seq"] != self.expected_seq:
            missing = (
                f"seq {self.expected_seq}"
                if row["seq"] == self.expected_seq + 1
                else f"seq {self.expected_seq} to {row['seq'] - 1}"
            )
            return f"gap before {where}: {missing} missing (deleted or never committed)"
        if self.start is not None and row["seq"] == self.start.seq:
            return None  # the starting head: its own hash is compared with the published one
        if row["prev_hash"] != self.prev_hash:
            before = f"the hash of {self.prev_where}" if self.prev_where else "the genesis hash"
            return (
                f"prev-hash mismatch at {where}: prev_hash {row['prev_hash']} "
                f"is not {before}, {self.prev_hash}"
            )
        return None

    def _hash_problem(self, row: dict, where: str) -> str | None:
        key_id = row["key_id"]
        if not key_id:
            if self.key_ids:
                return (
                    f"unkeyed event at {where} after keyed events: it was hashed without "
                    "AUDIT_HMAC_KEY, so it was written or rewritten by someone without the key"
                )
            self.unkeyed += 1
            computed = event_hash(row)
        else:
            key = self.known_keys.get(key_id)
            if key is None:
                return (
                    f"unknown key at {where}: its key id {key_id} is neither AUDIT_HMAC_KEY's "
                    "nor one of AUDIT_HMAC_OLD_KEYS' (an old key missing from the setting, or "
                    "a forged event)"
                )
            if key_id not in self.key_ids:
                self.key_ids.append(key_id)
            computed = event_hash(row, key=key)
        if computed != row["hash"]:  # no secret to time: both hashes are in the table
            # Never print the hash the fields should have: that would hand whoever reads
            # this the keyed hash of a row they changed, one rewrite at a time.
            return (
                f"content hash mismatch at {where}: its stored hash {row['hash']} is not the "
                "hash of its fields (the row was changed after it was written)"
            )
        return None

    def result(self, **problem) -> ChainCheck:
        return ChainCheck(
            self.checked,
            unkeyed=self.unkeyed,
            key_ids=tuple(self.key_ids),
            heads_matched=self.heads_matched,
            **problem,
        )

    def finish(self) -> ChainCheck:
        last_seq = self.expected_seq - 1
        beyond = [head for seq, heads in self.heads.items() if seq > last_seq for head in heads]
        if beyond:
            head = max(beyond, key=lambda h: h.seq)
            end = f"ends at seq {last_seq}" if last_seq else "is empty"
            return self.result(
                problem=f"events missing at the end: the chain {end}, but {head.described} "
                f"was seq {head.seq} (hash {head.hash}); the newest events were deleted",
                seq=head.seq,
            )
        if self.checked == 0:
            return self.result()
        return self.result(head_seq=last_seq, head_hash=self.prev_hash)
