"""A/B experiments: defining and stopping them, service tokens, outcome ingestion, results,
the metric gate's observation, and the MLflow side (publishing, logging, importing).

Every state change made by a person is authorised and audited here; outcome events are
data, not changes, so they are not audited (each batch would otherwise queue on the audit
chain's lock). The statistics are pure (registry_ui.core.experiment_stats).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from registry_ui.core.experiment_stats import (
    EMPTY,
    Comparison,
    Estimate,
    Sample,
    compare,
    estimate,
)
from registry_ui.core.experiments import (
    METRIC_RE,
    ExperimentConfig,
    ExperimentConfigError,
    Variant,
)
from registry_ui.core.policy import MetricObservation, PolicyError
from registry_ui.web import audit
from registry_ui.web.models import (
    AuditEvent,
    Experiment,
    ExperimentVariant,
    OutcomeAggregate,
    RunMetric,
    ServiceToken,
    Template,
    TemplateVersion,
)

MAX_BATCH = 1000
MAX_TEXT = 5000
# Outcome times may run this far ahead of our clock (the caller's clock may be fast).
CLOCK_SKEW = timedelta(minutes=5)
EVENT_FIELDS = ("experiment", "variant", "unit_id", "metric", "value", "time", "event_id")


def _require(user, codename: str, action: str) -> None:
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(f"sign in to {action}")
    if not user.has_perm(f"registry_web.{codename}"):
        raise PermissionDenied(f"{action} needs the {codename} permission (the analysts group)")


def _audit(actor: str, action: str, object_type: str, object_id: str, after: dict, source: str):
    audit.record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=None,
        after=after,
        source=source,
    )


# -- defining and stopping ------------------------------------------------------------------


@dataclass(frozen=True)
class VariantLine:
    name: str
    version: str
    weight: int


def experiment_define(
    user,
    *,
    template_name: str,
    key: str,
    title: str,
    variants: Sequence[VariantLine],
    metric: str,
    kind: str,
    min_samples: int,
    start_at: datetime,
    stop_at: datetime,
    target: float | None = None,
    hypothesis: str = "",
    source: str = AuditEvent.Source.DASHBOARD,
) -> Experiment:
    """Define an experiment; it is published to MLflow once the transaction commits."""
    _require(user, "define_experiment", "defining an experiment")
    return create_experiment(
        actor=user.get_username(),
        created_by=user,
        template_name=template_name,
        key=key,
        title=title,
        variants=variants,
        metric=metric,
        kind=kind,
        min_samples=min_samples,
        start_at=start_at,
        stop_at=stop_at,
        target=target,
        hypothesis=hypothesis,
        source=source,
    )


def create_experiment(
    *,
    actor: str,
    created_by=None,
    template_name: str,
    key: str,
    title: str,
    variants: Sequence[VariantLine],
    metric: str,
    kind: str,
    min_samples: int,
    start_at: datetime,
    stop_at: datetime,
    target: float | None = None,
    hypothesis: str = "",
    source: str = AuditEvent.Source.DASHBOARD,
) -> Experiment:
    """experiment_define without the permission check (the demo loader and tests)."""
    try:
        ExperimentConfig(
            key=key,
            template=template_name,
            variants=tuple(Variant(v.name, v.version, v.weight) for v in variants),
            metric=metric,
            kind=kind,
            start=start_at,
            stop=stop_at,
        )
    except ExperimentConfigError as error:
        raise PolicyError(str(error)) from None
    if min_samples < 1:
        raise PolicyError("minimum sample per variant must be at least 1")
    if target is not None and not math.isfinite(target):
        raise PolicyError("target must be a finite number")
    if kind == "rate" and target is not None and not 0 <= target <= 1:
        raise PolicyError(f"target {target:g}: a rate's target is between 0 and 1, e.g. 0.06")
    with audit.atomic():
        try:
            template = Template.objects.select_for_update().get(name=template_name)
        except Template.DoesNotExist:
            raise PolicyError(
                f"template {template_name!r} is not in the mirror (sync the registry if it "
                "was registered outside the dashboard)"
            ) from None
        rows = {
            row.version: row
            for row in TemplateVersion.objects.filter(
                template=template, version__in=[v.version for v in variants]
            )
        }
        missing = [v.version for v in variants if v.version not in rows]
        if missing:
            raise PolicyError(f"{template_name} has no version {', '.join(missing)}")
        overlapping = (
            Experiment.objects.filter(
                template=template,
                status=Experiment.Status.RUNNING,
                start_at__lt=stop_at,
                stop_at__gt=start_at,
            )
            .values_list("key", flat=True)
            .first()
        )
        if overlapping:
            raise PolicyError(
                f"experiment {overlapping} runs on {template_name} at the same time: stop it "
                "first, or start this one after it ends (one experiment per template at a time)"
            )
        try:
            with transaction.atomic():
                experiment = Experiment.objects.create(
                    template=template,
                    key=key,
                    title=title.strip()[:200] or key,
                    hypothesis=hypothesis.strip()[:MAX_TEXT],
                    metric=metric,
                    kind=kind,
                    min_samples=min_samples,
                    target=target,
                    start_at=start_at,
                    stop_at=stop_at,
                    created_by=created_by,
                    created_by_username=actor,
                )
        except IntegrityError:
            raise PolicyError(f"an experiment with key {key!r} exists already") from None
        ExperimentVariant.objects.bulk_create(
            ExperimentVariant(
                experiment=experiment,
                name=line.name,
                version=rows[line.version],
                weight=line.weight,
                position=position,
            )
            for position, line in enumerate(variants)
        )
        _audit(actor, "experiment.defined", "experiment", key, _describe(experiment), source)
        _publish_after_commit(experiment)
        return experiment


def experiment_stop(
    user, key: str, *, reason: str, source: str = AuditEvent.Source.DASHBOARD
) -> Experiment:
    """Stop an experiment early: every unit gets the control from then on. Retry-safe."""
    _require(user, "define_experiment", "stopping an experiment")
    reason = (reason or "").strip()
    if not reason:
        raise PolicyError("a reason is required: say why the experiment stops")
    if len(reason) > MAX_TEXT:
        raise PolicyError(f"the reason is {len(reason)} characters long: at most {MAX_TEXT}")
    with audit.atomic():
        try:
            experiment = Experiment.objects.select_for_update().get(key=key)
        except Experiment.DoesNotExist:
            raise PolicyError(f"experiment {key!r} does not exist") from None
        if experiment.status == Experiment.Status.STOPPED:
            return experiment  # a retried click
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.stop_reason = reason
        experiment.save(update_fields=["status", "stopped_at", "stop_reason"])
        _audit(
            user.get_username(),
            "experiment.stopped",
            "experiment",
            key,
            {"reason": reason},
            source,
        )
        _publish_after_commit(experiment)
        return experiment


def _describe(experiment: Experiment) -> dict:
    return {
        "template": experiment.template.name,
        "title": experiment.title,
        "metric": experiment.metric,
        "kind": experiment.kind,
        "min_samples": experiment.min_samples,
        "target": experiment.target,
        "start_at": experiment.start_at.isoformat(),
        "stop_at": experiment.stop_at.isoformat(),
        "variants": [
            {"name": v.name, "version": v.version.version, "weight": v.weight}
            for v in experiment.variants.select_related("version")
        ],
    }


# -- publishing to MLflow -------------------------------------------------------------------


def config_of(experiment: Experiment) -> ExperimentConfig:
    variants = experiment.variants.select_related("version").order_by("position")
    return ExperimentConfig(
        key=experiment.key,
        template=experiment.template.name,
        variants=tuple(Variant(v.name, v.version.version, v.weight) for v in variants),
        metric=experiment.metric,
        kind=experiment.kind,
        status=experiment.status,
        start=experiment.start_at,
        stop=experiment.stop_at,
    )


def _publish_after_commit(experiment: Experiment) -> None:
    from registry_ui.web.tasks import publish_experiment

    publish_experiment.delay_on_commit(experiment.pk)


def publish(experiment_id: int) -> None:
    """Write the experiment's current configuration to its template's registered model.

    Idempotent: it always writes what the database says now. RegistryUnavailableError
    propagates so the task retries; a refusal is kept on the experiment for its page.
    """
    from registry_ui.core.errors import RegistryRejectedError, RegistryUnavailableError
    from registry_ui.prompt_model import get_registry

    experiment = Experiment.objects.select_related("template").get(pk=experiment_id)
    config = config_of(experiment)
    registry = get_registry()
    try:
        registry.gateway.set_experiment_config(config.template, config.key, config.to_json())
    except RegistryUnavailableError:
        raise
    except RegistryRejectedError as error:
        Experiment.objects.filter(pk=experiment_id).update(publish_error=str(error)[:MAX_TEXT])
        return
    registry.invalidate(config.template)
    Experiment.objects.filter(pk=experiment_id).update(
        published_at=timezone.now(), publish_error=""
    )


# -- service tokens -------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def service_token_create(user, *, name: str) -> tuple[ServiceToken, str]:
    """A new token for a calling service; the token itself is returned once, never stored."""
    if not (user and user.is_active and user.is_superuser):
        raise PermissionDenied("only an administrator creates service tokens")
    name = (name or "").strip()
    if not name:
        raise PolicyError("a name is required: name the service that will use the token")
    token = "rui_" + secrets.token_urlsafe(32)
    with audit.atomic():
        try:
            with transaction.atomic():
                row = ServiceToken.objects.create(
                    name=name,
                    token_sha256=_token_hash(token),
                    prefix=token[:12],
                    created_by=user.get_username(),
                )
        except IntegrityError:
            raise PolicyError(f"a service token named {name!r} exists already") from None
        _audit(
            user.get_username(),
            "service_token.created",
            "service_token",
            name,
            {"prefix": row.prefix},
            AuditEvent.Source.DASHBOARD,
        )
    return row, token


def service_token_revoke(user, token_ids: Iterable[int]) -> int:
    if not (user and user.is_active and user.is_superuser):
        raise PermissionDenied("only an administrator revokes service tokens")
    with audit.atomic():
        rows = list(
            ServiceToken.objects.select_for_update().filter(
                pk__in=list(token_ids), revoked_at__isnull=True
            )
        )
        now = timezone.now()
        for row in rows:
            ServiceToken.objects.filter(pk=row.pk).update(revoked_at=now)
            _audit(
                user.get_username(),
                "service_token.revoked",
                "service_token",
                row.name,
                {"prefix": row.prefix},
                AuditEvent.Source.DASHBOARD,
            )
    return len(rows)


def authenticate_service(authorization: str) -> ServiceToken | None:
    """The service whose bearer token this Authorization header carries, if valid."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = ServiceToken.objects.filter(
        token_sha256=_token_hash(token.strip()), revoked_at__isnull=True
    ).first()
    if row is not None:
        now = timezone.now()
        if row.last_used_at is None or row.last_used_at < now - timedelta(minutes=1):
            # At most once a minute: every batch updating one row would queue on its lock.
            ServiceToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


# -- outcome ingestion ----------------------------------------------------------------------


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
    received = len(payload["events"])
    with transaction.atomic():
        if connection.vendor == "postgresql":
            accepted = _insert_postgresql(service.pk, rows)
        else:
            accepted = _insert_generic(service.pk, rows)
    return IngestResult(received, accepted, received - accepted)


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
        if event_id in seen:
            continue  # the same event twice in one batch counts once
        seen.add(event_id)
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


# One statement: insert the events, skipping event ids this service sent before, and add
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
    ON CONFLICT (service_id, event_id) DO NOTHING
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
    by_id = {row[0]: row for row in rows}
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
                f"{values} ON CONFLICT (service_id, event_id) DO NOTHING RETURNING event_id",
                params,
            )
            inserted += [row[0] for row in cursor.fetchall()]
        sums: dict[tuple, list] = {}
        for event_id in inserted:
            _, experiment_id, variant_id, _, metric, value, at = by_id[event_id]
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


# -- results --------------------------------------------------------------------------------


@dataclass
class VariantResult:
    variant: ExperimentVariant
    sample: Sample
    estimate: Estimate
    enough: bool  # reached the minimum sample
    comparison: Comparison | None  # against the control; None for the control itself
    series: list[tuple[date, float]] = field(default_factory=list)  # cumulative, by day
    minimum: int = 0  # the experiment's minimum sample per variant

    @property
    def progress(self) -> int:
        """n, capped at the minimum (for a <progress> bar)."""
        return min(self.sample.n, self.minimum)


@dataclass
class Results:
    experiment: Experiment
    metric: str
    kind: str
    variants: list[VariantResult]
    days: list[date]
    metrics: list[str]  # every metric reported for this experiment

    @property
    def control(self) -> VariantResult:
        return self.variants[0]

    @property
    def enough(self) -> bool:
        return all(v.enough for v in self.variants)


def samples_by_variant(experiment: Experiment, metric: str) -> dict[int, Sample]:
    totals = (
        OutcomeAggregate.objects.filter(experiment=experiment, metric=metric)
        .values("variant_id")
        .annotate(n=Sum("count"), total=Sum("sum"), total_sq=Sum("sumsq"))
    )
    return {row["variant_id"]: Sample(row["n"], row["total"], row["total_sq"]) for row in totals}


def results(experiment: Experiment, metric: str | None = None) -> Results:
    """Per variant: n, estimate and interval, and each treatment against the control; the
    cumulative estimate by day for the chart. Three queries, whatever the data."""
    metric = metric or experiment.metric
    kind = experiment.kind if metric == experiment.metric else "mean"
    variants = list(experiment.variants.select_related("version").order_by("position"))
    rows = (
        OutcomeAggregate.objects.filter(experiment=experiment, metric=metric)
        .order_by("day")
        .values_list("variant_id", "day", "count", "sum", "sumsq")
    )
    days = sorted({row[1] for row in rows})
    running: dict[int, Sample] = {}
    series: dict[int, list[tuple[date, float]]] = {v.pk: [] for v in variants}
    for day, day_rows in groupby(rows, key=lambda r: r[1]):
        for variant_id, _, n, s, sq in day_rows:
            running[variant_id] = running.get(variant_id, EMPTY) + Sample(n, s, sq)
            if variant_id in series:
                series[variant_id].append((day, running[variant_id].mean))
    metrics = sorted(
        set(
            OutcomeAggregate.objects.filter(experiment=experiment)
            .order_by()
            .values_list("metric", flat=True)
            .distinct()
        )
        | {experiment.metric}
    )
    control_sample = running.get(variants[0].pk, EMPTY) if variants else EMPTY
    out = []
    for position, variant in enumerate(variants):
        sample = running.get(variant.pk, EMPTY)
        out.append(
            VariantResult(
                variant=variant,
                sample=sample,
                estimate=estimate(sample, kind),
                enough=sample.n >= experiment.min_samples,
                comparison=compare(control_sample, sample, kind) if position else None,
                series=series[variant.pk],
                minimum=experiment.min_samples,
            )
        )
    return Results(experiment, metric, kind, out, days, metrics)


# -- the metric gate ------------------------------------------------------------------------


def observation_for(version: TemplateVersion) -> MetricObservation | None:
    """What the latest experiment serving this version measured, beside production.

    None when no experiment has a variant serving it: the gate then reads "no data".
    """
    mine = (
        ExperimentVariant.objects.filter(version=version)
        .select_related("experiment")
        .order_by("-experiment__start_at", "-experiment_id")
        .first()
    )
    if mine is None:
        return None
    experiment = mine.experiment
    variants = list(experiment.variants.select_related("version").order_by("position"))
    others = [v for v in variants if v.pk != mine.pk]
    control = next((v for v in others if v.version.stage == "production"), None)
    if control is None and variants[0].pk != mine.pk:
        control = variants[0]
    samples = samples_by_variant(experiment, experiment.metric)
    sample = samples.get(mine.pk, EMPTY)
    measured = estimate(sample, experiment.kind)
    figures = {
        "rate": measured.value,
        "samples": sample.n,
        "ci_low": measured.ci.low if measured.ci else None,
        "ci_high": measured.ci.high if measured.ci else None,
        "kind": experiment.kind,
        "metric": experiment.metric,
        "label": version.version,
        "experiment": experiment.key,
        "target": experiment.target,
        "min_samples": experiment.min_samples,
    }
    if control is not None:
        control_sample = samples.get(control.pk, EMPTY)
        comparison = compare(control_sample, sample, experiment.kind)
        figures.update(
            control_label=control.version.version,
            control_rate=control_sample.mean,
            control_samples=control_sample.n,
            difference=comparison.difference,
            difference_ci=(
                (comparison.difference_ci.low, comparison.difference_ci.high)
                if comparison.difference_ci
                else None
            ),
            p_value=comparison.p_value,
        )
    return MetricObservation(**figures)


# -- reads for the pages --------------------------------------------------------------------


def progress_by_experiment(experiments: Sequence[Experiment]) -> dict[int, dict[int, int]]:
    """experiment id -> {variant id: n of its primary metric}, in one query."""
    rows = (
        OutcomeAggregate.objects.filter(experiment__in=[e.pk for e in experiments])
        .filter(metric=F("experiment__metric"))
        .values("experiment_id", "variant_id")
        .annotate(n=Sum("count"))
    )
    found: dict[int, dict[int, int]] = {}
    for row in rows:
        found.setdefault(row["experiment_id"], {})[row["variant_id"]] = row["n"]
    return found


def version_metrics(version: TemplateVersion) -> dict[str, dict]:
    """metric -> {"sample", "estimate", "runs", "run_mean"} for one version: the outcomes of
    every experiment that served it, and the metrics imported from its MLflow runs."""
    found: dict[str, dict] = {}
    rows = (
        OutcomeAggregate.objects.filter(variant__version=version)
        .values("metric", "experiment__kind", "experiment__metric")
        .annotate(n=Sum("count"), total=Sum("sum"), total_sq=Sum("sumsq"))
    )
    for row in rows:
        kind = row["experiment__kind"] if row["metric"] == row["experiment__metric"] else "mean"
        entry = found.setdefault(row["metric"], {"sample": EMPTY, "kind": kind})
        entry["sample"] = entry["sample"] + Sample(row["n"], row["total"], row["total_sq"])
    for entry in found.values():
        entry["estimate"] = estimate(entry["sample"], entry["kind"])
    imported = (
        RunMetric.objects.filter(version=version)
        .values("key")
        .annotate(runs=Count("id"), total=Sum("value"))
    )
    for row in imported:
        entry = found.setdefault(row["key"], {"kind": "mean"})
        entry["runs"] = row["runs"]
        entry["run_mean"] = row["total"] / row["runs"]
    return found


# -- MLflow: logging and importing ----------------------------------------------------------


def log_metrics_to_mlflow(experiment_id: int) -> int:
    """Log the days whose figures changed since the last run to the variants' MLflow runs.

    Each variant has one run tagged with template and version; a day is logged as
    ``<metric>`` (its rate or mean) and ``<metric>_count`` at step = days since the start.
    A day logged again (more outcomes arrived) gets a newer timestamp, so MLflow's latest
    value is the current one. Returns the number of days logged.
    """
    from registry_ui.prompt_model import get_registry

    gateway = get_registry().gateway
    experiment = Experiment.objects.select_related("template").get(pk=experiment_id)
    pending = list(
        OutcomeAggregate.objects.filter(experiment=experiment)
        .exclude(count=F("logged_count"))
        .order_by("variant_id", "metric", "day")
    )
    if not pending:
        return 0
    variants = {v.pk: v for v in experiment.variants.select_related("version")}
    stamp = int(timezone.now().timestamp() * 1000)
    first_day = experiment.start_at.astimezone(UTC).date()
    for variant_id, rows in groupby(pending, key=lambda row: row.variant_id):
        rows = list(rows)
        run_id = _metrics_run(gateway, experiment, variants[variant_id])
        metrics = []
        for row in rows:
            step = (row.day - first_day).days
            metrics.append((row.metric, row.sum / row.count, stamp, step))
            metrics.append((f"{row.metric}_count", row.count, stamp, step))
        gateway.log_metrics(run_id, metrics)
        for row in rows:
            OutcomeAggregate.objects.filter(pk=row.pk).update(logged_count=row.count)
    return len(pending)


def _metrics_run(gateway, experiment: Experiment, variant: ExperimentVariant) -> str:
    if variant.mlflow_run_id:
        return variant.mlflow_run_id
    run_id = gateway.start_metrics_run(
        experiment=experiment.key,
        variant=variant.name,
        name=experiment.template.name,
        version=variant.version.version,
    )
    # Two loggers racing both create a run; the first one recorded wins, the other is idle.
    ExperimentVariant.objects.filter(pk=variant.pk, mlflow_run_id="").update(mlflow_run_id=run_id)
    variant.mlflow_run_id = ExperimentVariant.objects.values_list("mlflow_run_id", flat=True).get(
        pk=variant.pk
    )
    return variant.mlflow_run_id


def experiments_to_log() -> list[int]:
    return list(
        OutcomeAggregate.objects.exclude(count=F("logged_count"))
        .order_by()
        .values_list("experiment_id", flat=True)
        .distinct()
    )


def import_run_metrics() -> dict[str, int]:
    """Import the latest metrics of MLflow runs tagged with a template version we mirror.

    Safe to re-run: a run's metric is one row, updated to its latest value.
    """
    from registry_ui.prompt_model import get_registry

    runs = get_registry().gateway.version_runs()
    wanted = {(run.template, run.version) for run in runs}
    versions = {
        (row.template.name, row.version): row
        for row in TemplateVersion.objects.select_related("template").filter(
            template__name__in={name for name, _ in wanted}
        )
    }
    now = timezone.now()
    rows = [
        RunMetric(
            version=versions[(run.template, run.version)],
            run_id=run.run_id,
            key=key[:250],
            value=value,
            run_started_at=run.started_at,
            imported_at=now,
        )
        for run in runs
        if (run.template, run.version) in versions
        for key, value in run.metrics.items()
        if math.isfinite(value)
    ]
    RunMetric.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["run_id", "key"],
        update_fields=["value", "imported_at"],
        batch_size=1000,
    )
    return {"runs": len(runs), "metrics": len(rows)}


def experiments_for_template(template_name: str) -> list[Experiment]:
    return list(Experiment.objects.filter(template__name=template_name).order_by("-start_at"))
