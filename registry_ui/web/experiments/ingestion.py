"""Outcome events reported by services: validated, deduplicated, aggregated.

Outcome events are data, not changes, so they are not audited (each batch would otherwise
queue on the audit chain's lock)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from registry_ui.core.experiments import METRIC_RE
from registry_ui.web.models import Experiment, ExperimentVariant, ServiceToken

MAX_BATCH = 1000


# Outcome times may run this far ahead of our clock (the caller's clock may be fast).
CLOCK_SKEW = timedelta(minutes=5)


EVENT_FIELDS = ("experiment", "variant", "unit_id", "metric", "value", "time", "event_id")


class OutcomeRejected(Exception):
    """A batch refused as a whole; the message names the field."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class IngestResult:
    received: int
    accepted: int  # new events, counted in the aggregates
    duplicates: int  # event ids seen before (or twice in the batch): ignored


@dataclass(frozen=True)
class _Target:
    experiment_id: int
    variant_ids: dict[str, int]
    start_at: datetime
    metric: str
    kind: str


def record_outcomes(service: ServiceToken, payload) -> IngestResult:
    """Validate a whole batch, then store its new events and add them to the aggregates,
    in one transaction. Nothing of a batch with any bad event is stored."""
    rows = _validate(payload)
    if not rows:
        return IngestResult(0, 0, 0)
    _check_scope(service, payload, rows)
    received = len(payload["events"])
    with transaction.atomic():
        if connection.vendor == "postgresql":
            accepted = _insert_postgresql(service.pk, rows)
        else:
            accepted = _insert_generic(service.pk, rows)
    return IngestResult(received, accepted, received - accepted)


def _check_scope(service: ServiceToken, payload, rows: list[tuple]) -> None:
    """Refuse the whole batch when it names an experiment this service may not report."""
    allowed = set(service.experiments.values_list("pk", flat=True))
    if all(row[1] in allowed for row in rows):
        return
    for index, event in enumerate(payload["events"]):
        key = event["experiment"]
        experiment = Experiment.objects.filter(key=key).values_list("pk", flat=True).first()
        if experiment not in allowed:
            raise OutcomeRejected(
                f"events[{index}].experiment: the token of service {service.name!r} may not "
                f"report outcomes for experiment {key!r}; the experiments it may report are "
                "chosen when an experiment is defined (Services that report its outcomes) or "
                "when an admin creates the token. Nothing of this batch was stored",
                status=403,
            )


def _validate(payload) -> list[tuple]:
    """(event_id, experiment_id, variant_id, unit_id, metric, value, occurred_at) per event,
    without the batch's own repeats; raises OutcomeRejected at the first bad field."""
    if not isinstance(payload, dict):
        raise OutcomeRejected('body: must be a JSON object such as {"events": [...]}')
    events = payload.get("events")
    if not isinstance(events, list):
        raise OutcomeRejected("events: must be a list of outcome events")
    if len(events) > MAX_BATCH:
        raise OutcomeRejected(
            f"events: {len(events):,} in one batch, at most {MAX_BATCH:,} accepted: "
            "send them in several batches",
            status=413,
        )
    targets = _targets({e.get("experiment") for e in events if type(e) is dict})
    now = timezone.now()
    latest = now + CLOCK_SKEW
    seen: set[str] = set()
    rows = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if type(event) is not dict:
            raise OutcomeRejected(f"{where}: must be an object with {', '.join(EVENT_FIELDS)}")
        if len(event) != len(EVENT_FIELDS) or event.keys() - EVENT_FIELDS:
            _fields_problem(where, event)
        key = event["experiment"]
        target = targets.get(key) if type(key) is str else None
        if target is None:
            raise OutcomeRejected(f"{where}.experiment: no experiment has the key {key!r}")
        variant = event["variant"]
        variant_id = target.variant_ids.get(variant) if type(variant) is str else None
        if variant_id is None:
            raise OutcomeRejected(
                f"{where}.variant: {variant!r} is not a variant of {key} "
                f"(its variants: {', '.join(target.variant_ids)})"
            )
        unit_id = event["unit_id"]
        if type(unit_id) is not str or not 0 < len(unit_id) <= 200 or not _encodable(unit_id):
            raise OutcomeRejected(f"{where}.unit_id: must be a string of 1 to 200 characters")
        metric = event["metric"]
        if type(metric) is not str or not METRIC_RE.fullmatch(metric):
            raise OutcomeRejected(
                f"{where}.metric: {metric!r} is not a metric name (lower-case letters, digits "
                "and underscores, starting with a letter)"
            )
        value = event["value"]
        if type(value) not in (int, float) or not math.isfinite(value):
            raise OutcomeRejected(f"{where}.value: must be a finite number, got {value!r}")
        if metric == target.metric and target.kind == "rate" and value not in (0, 1):
            raise OutcomeRejected(
                f"{where}.value: {metric} is a rate, so each outcome is 0 or 1, got {value!r}"
            )
        occurred_at = _time(event["time"], where)
        if occurred_at < target.start_at:
            raise OutcomeRejected(
                f"{where}.time: {event['time']} is before the experiment started "
                f"({target.start_at.isoformat()})"
            )
        if occurred_at > latest:
            raise OutcomeRejected(f"{where}.time: {event['time']} is in the future")
        event_id = event["event_id"]
        if type(event_id) is not str or not 0 < len(event_id) <= 100 or not _encodable(event_id):
            raise OutcomeRejected(f"{where}.event_id: must be a string of 1 to 100 characters")
        if (target.experiment_id, event_id) in seen:
            continue  # the same event twice in one batch counts once
        seen.add((target.experiment_id, event_id))
        rows.append(
            (event_id, target.experiment_id, variant_id, unit_id, metric, float(value), occurred_at)
        )
    return rows


def _encodable(text: str) -> bool:
    """False for a lone surrogate (JSON allows "\\ud800"; UTF-8 and the database do not)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _fields_problem(where: str, event: dict):
    unknown = sorted(str(k) for k in event.keys() - EVENT_FIELDS)
    if unknown:
        raise OutcomeRejected(
            f"{where}.{unknown[0]}: unknown field; accepted: {', '.join(EVENT_FIELDS)}"
        )
    missing = next(f for f in EVENT_FIELDS if f not in event)
    raise OutcomeRejected(f"{where}.{missing}: required")


def _time(value, where: str) -> datetime:
    if type(value) is not str:
        raise OutcomeRejected(
            f"{where}.time: must be an ISO 8601 string with a time zone, e.g. 2026-11-28T14:00:00Z"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise OutcomeRejected(
            f"{where}.time: {value!r} is not an ISO 8601 time, e.g. 2026-11-28T14:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise OutcomeRejected(f"{where}.time: {value!r} has no time zone: add Z or +00:00")
    return moment


def _targets(keys: set) -> dict[str, _Target]:
    """The experiments a batch names, with their variants, in one query."""
    rows = ExperimentVariant.objects.filter(
        experiment__key__in=[k for k in keys if type(k) is str and _encodable(k)]
    ).values_list(
        "experiment__key",
        "experiment_id",
        "name",
        "pk",
        "experiment__start_at",
        "experiment__metric",
        "experiment__kind",
    )
    targets: dict[str, _Target] = {}
    for key, experiment_id, name, pk, start_at, metric, kind in rows:
        target = targets.get(key)
        if target is None:
            target = targets[key] = _Target(experiment_id, {}, start_at, metric, kind)
        target.variant_ids[name] = pk
    return targets


# One statement: insert the events, skipping event ids the experiment has already, and add
# only the rows actually inserted (RETURNING) to the day's aggregates. Concurrent batches
# with the same event id cannot both count it: the second waits on the unique index and
# then skips it. Aggregate rows are upserted in key order, so two batches lock them in the
# same order (no deadlock).
_POSTGRESQL_INGEST = """
WITH new AS (
    INSERT INTO registry_web_outcomeevent
        (service_id, event_id, experiment_id, variant_id, unit_id, metric, value,
         occurred_at, received_at)
    SELECT %s, e.i, e.x, e.v, e.u, e.m, e.n, e.t, %s
    FROM json_to_recordset(%s::json)
         AS e(i text, x bigint, v bigint, u text, m text, n float8, t timestamptz)
    ON CONFLICT (experiment_id, event_id) DO NOTHING
    RETURNING experiment_id, variant_id, metric, occurred_at, value
), added AS (
    INSERT INTO registry_web_outcomeaggregate
        (experiment_id, variant_id, metric, day, count, sum, sumsq, logged_count)
    SELECT experiment_id, variant_id, metric, (occurred_at AT TIME ZONE 'UTC')::date,
           count(*), sum(value), sum(value * value), 0
    FROM new
    GROUP BY 1, 2, 3, 4
    ORDER BY 2, 3, 4
    ON CONFLICT (variant_id, metric, day) DO UPDATE SET
        count = registry_web_outcomeaggregate.count + EXCLUDED.count,
        sum = registry_web_outcomeaggregate.sum + EXCLUDED.sum,
        sumsq = registry_web_outcomeaggregate.sumsq + EXCLUDED.sumsq
    RETURNING 1
)
SELECT count(*) FROM new
"""


def _insert_postgresql(service_id: int, rows: list[tuple]) -> int:
    # The batch travels as one JSON document: Django's client-side parameter binding would
    # quote 7,000 array elements one by one in Python, three times slower than json.dumps.
    document = json.dumps(
        [
            {"i": i, "x": x, "v": v, "u": u, "m": m, "n": n, "t": t.isoformat()}
            for i, x, v, u, m, n, t in rows
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRESQL_INGEST, [service_id, timezone.now(), document])
        return cursor.fetchone()[0]


def _insert_generic(service_id: int, rows: list[tuple]) -> int:
    """SQLite: INSERT ... ON CONFLICT DO NOTHING RETURNING names the new rows (3.35+);
    write transactions are serialised, so the aggregates cannot race."""
    ops = connection.ops
    received = ops.adapt_datetimefield_value(timezone.now())
    by_id = {(row[1], row[0]): row for row in rows}  # (experiment, event id)
    inserted: list[str] = []
    # SQLite binds at most 32,766 parameters per statement: 9 per row, 500 rows a chunk.
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            params = []
            for event_id, experiment_id, variant_id, unit_id, metric, value, at in chunk:
                params += [
                    service_id,
                    event_id,
                    experiment_id,
                    variant_id,
                    unit_id,
                    metric,
                    value,
                    ops.adapt_datetimefield_value(at),
                    received,
                ]
            cursor.execute(
                "INSERT INTO registry_web_outcomeevent (service_id, event_id, experiment_id, "
                "variant_id, unit_id, metric, value, occurred_at, received_at) VALUES "
                f"{values} ON CONFLICT (experiment_id, event_id) DO NOTHING "
                "RETURNING experiment_id, event_id",
                params,
            )
            inserted += [(row[0], row[1]) for row in cursor.fetchall()]
        sums: dict[tuple, list] = {}
        for key in inserted:
            _, experiment_id, variant_id, _, metric, value, at = by_id[key]
            key = (experiment_id, variant_id, metric, at.astimezone(UTC).date())
            total = sums.setdefault(key, [0, 0.0, 0.0])
            total[0] += 1
            total[1] += value
            total[2] += value * value
        for (experiment_id, variant_id, metric, day), (n, s, sq) in sorted(sums.items()):
            cursor.execute(
                "INSERT INTO registry_web_outcomeaggregate (experiment_id, variant_id, metric, "
                "day, count, sum, sumsq, logged_count) VALUES (%s, %s, %s, %s, %s, %s, %s, 0) "
                "ON CONFLICT (variant_id, metric, day) DO UPDATE SET "
                "count = count + excluded.count, sum = sum + excluded.sum, "
                "sumsq = sumsq + excluded.sumsq",
                [experiment_id, variant_id, metric, ops.adapt_datefield_value(day), n, s, sq],
            )
    return len(inserted)
