"""Carrying out operations (called by the run_operation task).

- A worker claims an operation with a conditional UPDATE (exactly one wins); the partial
  unique constraint on running operations serialises work on one template.
- The MLflow write is idempotent through the operation id tag: a re-run finds its earlier
  effect and records it instead of writing again.
- A template's registrations are carried out in chunks: one claimed, its followers taken
  with it, one MLflow create call each, and one transaction recording them all."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from registry_ui.core.errors import ContentMismatchError, RegistryUnavailableError
from registry_ui.core.intents import Intent, OutsideChangeError
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.records import VersionRecord
from registry_ui.core.redact import redact, redact_error
from registry_ui.prompt_model import get_registry
from registry_ui.registry import NewVersion
from registry_ui.web.audit import trail
from registry_ui.web.checks.services import ensure_registration_run
from registry_ui.web.models import AuditEvent, Batch, Operation, TemplateFlag
from registry_ui.web.prompts.flags import raise_flag
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews.execution import (
    ChangedInMlflow,
    check_before_write,
    execute_release,
    must_finish,
    operation_finished,
)

logger = logging.getLogger("registry_ui.operations")


@dataclass(frozen=True)
class Outcome:
    """What running an operation did: done, already done, busy, or will retry."""

    status: str
    detail: str = ""
    retry_in: float | None = None  # seconds until the next attempt is due ("retry")


def retry_delay(attempts: int) -> float:
    """The pause after ``attempts`` attempts: exponential, capped, with +-20% jitter.

    Jitter spreads the retries of operations that failed together (an MLflow outage)."""
    base = settings.OPERATION_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return min(settings.OPERATION_RETRY_MAX_SECONDS, base) * random.uniform(0.8, 1.2)


class Lease:
    """Keeps the lease of the operation a task runs, renewing it every third of its term.

    A thread of its own renews it (with its own database connection), so a long MLflow
    call does not let the lease run out; if the task dies, renewals stop and the sweeper
    gives the operation to another worker once the lease has run out. Renewal and every
    finish are conditional on the attempt number, which a take-over raises: a worker that
    lost its operation cannot renew or finish it. If the task fails with an error (the
    database connection died, say), the operation is given back at once.
    """

    def __init__(self):
        self._held: tuple[uuid.UUID, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, operation: Operation) -> None:
        self._held = (operation.id, operation.attempts)
        if self._thread is None and not current_app.conf.task_always_eager:
            # In-process (eager) runs have no other worker to hand over to.
            self._thread = threading.Thread(target=self._renew, daemon=True, name="lease")
            self._thread.start()

    def _renew(self) -> None:
        interval = settings.OPERATION_LEASE_SECONDS / 3
        try:
            while not self._stop.wait(interval):
                held = self._held
                if held is not None:
                    Operation.objects.filter(
                        id=held[0], status=Operation.Status.RUNNING, attempts=held[1]
                    ).update(lease_expires_at=_lease_end())
        except Exception:
            logger.exception("could not renew an operation's lease; the sweeper will take it")
        finally:
            connection.close()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if error is not None and self._held is not None:
            self._give_back(error)

    def _give_back(self, error: BaseException) -> None:
        operation_id, attempts = self._held
        try:
            connection.close()  # it may be the broken one; the next query opens another
            Operation.objects.filter(
                id=operation_id, status=Operation.Status.RUNNING, attempts=attempts
            ).update(
                status=Operation.Status.PENDING,
                lease_expires_at=None,
                next_attempt_at=timezone.now(),
                last_error=f"the worker stopped: {redact_error(error)}"[:MAX_TEXT],
            )
        except Exception:
            logger.exception("could not give back operation %s; its lease runs out", operation_id)


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.OPERATION_LEASE_SECONDS)


class Busy(Exception):
    """Another operation on the same template runs or comes first; this one waits."""


def claim(operation_id: str) -> Operation | None:
    """Move one pending operation to running; None if another worker has it, it is done,
    or its next attempt is not due yet (a retry waits out its backoff).

    Raises Busy while an earlier operation on the same template is pending, or another is
    running (the partial unique constraint refuses a second running one): versions of a
    template must be written in order, one at a time.
    """
    # One plain read answers most messages: the task of a template's first operation carries
    # out the following ones too, so their own messages find them done. Only a pending one
    # is then asked whether it is queued behind an earlier open one (a costlier query).
    now = timezone.now()
    first = Operation.objects.filter(id=operation_id).values("status", "next_attempt_at").first()
    if first is None or first["status"] != Operation.Status.PENDING:
        return None
    if first["next_attempt_at"] is not None and first["next_attempt_at"] > now:
        return None
    mine = (
        Operation.objects.filter(id=operation_id)
        .annotate(blocked=Exists(_earlier_open()))
        .values("status", "template_name", "blocked")
        .first()
    )
    if mine is None or mine["status"] != Operation.Status.PENDING:
        return None
    if mine["blocked"]:
        raise Busy(mine["template_name"])
    try:
        with transaction.atomic():
            won = (
                Operation.objects.filter(id=operation_id, status=Operation.Status.PENDING)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .update(
                    status=Operation.Status.RUNNING,
                    attempts=F("attempts") + 1,
                    started_at=now,
                    lease_expires_at=_lease_end(),
                    next_attempt_at=None,
                )
            )
    except IntegrityError:
        raise Busy(mine["template_name"]) from None
    if won != 1:
        return None
    return Operation.objects.select_related("batch", "request__template", "request__version").get(
        id=operation_id
    )


def _earlier_open():
    """Open operations on the outer operation's template that come before it (for Exists)."""
    return Operation.objects.filter(
        Q(batch_id__lt=OuterRef("batch_id"))
        | Q(batch_id=OuterRef("batch_id"), position__lt=OuterRef("position")),
        template_name=OuterRef("template_name"),
        status__in=[Operation.Status.PENDING, Operation.Status.RUNNING],
    )


# How long one task keeps carrying out a template's following operations before it hands
# the rest to a new task (so a long batch does not hold one worker past its time limit).
CHAIN_SECONDS = 20.0


# A template's registrations are carried out in chunks: the chunk's first operation is
# claimed (running), the rest are taken with it, each version is written to MLflow with
# its own create call, and the chunk is recorded in one transaction (mirror, results,
# audit events, batch counters). Small enough that results show up within a few seconds
# and a crash repeats little (the re-run finds each write by its operation id).
CHUNK_OPERATIONS = 25


CHUNK_SECONDS = 3.0


def run(operation_id: str, *, send: Callable[..., None]) -> Outcome:
    """Carry out one operation, then the same template's following ones, in this task.

    Versions of a template are written in order, one at a time, so what this task read of
    the template stays true while it goes on: one registry read serves the whole chain
    and each further version costs one MLflow create call. ``send(ids, countdown=None)``
    queues operations (a retry with the countdown of its backoff).
    """
    # Well inside the task's hard time limit, which kills the task mid-operation.
    deadline = time.monotonic() + min(CHAIN_SECONDS, settings.OPERATION_TIME_LIMIT_SECONDS / 2)
    try:
        operation = claim(operation_id)
    except Busy:
        # Not lost: the task running the template's earlier operation carries on with this
        # one (and the sweeper re-sends anything left pending).
        return Outcome("busy", "another operation on this template runs or comes first")
    if operation is None:
        return Outcome("skipped", "not pending, or not due yet: done, cancelled or claimed")
    with Lease() as lease:
        lease.hold(operation)
        outcome, go_on, known = _carry_out(operation, known=None, deadline=deadline, send=send)
        while go_on:
            following = _next_pending(operation.template_name)
            if following is None:
                break
            if time.monotonic() > deadline:
                send([following])
                break
            try:
                operation = claim(str(following))
            except Busy:
                break  # someone else has the template now
            if operation is None:
                break
            lease.hold(operation)
            next_outcome, go_on, known = _carry_out(
                operation, known=known, deadline=deadline, send=send
            )
            if next_outcome.status == "retry":
                # Given back to pending: a task of its own retries it once it is due.
                send([operation.id], countdown=next_outcome.retry_in)
    return outcome


def _carry_out(operation: Operation, *, known, deadline: float, send):
    """Carry out a claimed operation (with the registrations that follow it, if it is one).

    Returns its outcome, whether the task may go on with the template, and what is now
    known of the template's versions.
    """
    if operation.kind == Operation.Kind.REGISTER and not operation.request_id:
        return _register_chunk(operation, known=known, deadline=deadline, send=send)
    try:
        result, known = _execute(operation, known)
    except RegistryUnavailableError as error:
        return retry_later(operation, error=str(error)), False, None
    except (OutsideChangeError, ContentMismatchError, ChangedInMlflow) as error:
        _refused(operation, error)
        finish(operation, status=Operation.Status.FAILED, error=str(error))
        return Outcome("failed", str(error)), True, None
    except (ValueError, LookupError) as error:  # refused by the registry rules or MLflow
        finish(operation, status=Operation.Status.FAILED, error=str(error))
        return Outcome("failed", str(error)), True, None
    finish(operation, status=Operation.Status.SUCCEEDED, result=result)
    return Outcome("succeeded"), True, known


def _register_chunk(head: Operation, *, known, deadline: float, send):
    """Register ``head`` (claimed) and the template's next pending registrations of its batch.

    ``head`` stays running until the chunk is recorded, so no other task claims any of
    them meanwhile (every one of them comes after it). Each version still gets its own
    create call, idempotent through its operation id; a transient failure stops the chunk
    there: what was written is recorded and the failed operation is given back.
    """
    registry = get_registry()
    chunk = [head, *_take_following(head)]
    cut = min(deadline, time.monotonic() + CHUNK_SECONDS)
    done: list[tuple[Operation, str, dict, str]] = []  # operation, status, result, error
    mirrored: dict[str, VersionRecord] = {}
    transient: tuple[Operation, str] | None = None
    for operation in chunk:
        if operation is not head and time.monotonic() > cut:
            break
        try:
            record, records, known = _write_registration(operation, known, registry)
        except RegistryUnavailableError as error:
            transient = (operation, str(error))
            break
        except (ValueError, LookupError) as error:  # refused by the registry rules or MLflow
            done.append((operation, Operation.Status.FAILED, {}, str(error)))
            known = None  # read afresh for the next one
            continue
        mirrored.update((r.version, r) for r in records)
        result = {"mlflow_version": record.mlflow_version, "stage": record.stage.value}
        done.append((operation, Operation.Status.SUCCEEDED, result, ""))
    not_tried = chunk[len(done) + (transient is not None) :]
    with trail.atomic():
        if mirrored:
            events = mirror_template(
                head.template_name,
                list(mirrored.values()),
                source=AuditEvent.Source.WORKER,
                actor=head.batch.actor,
            )
            new = {e.object_id for e in events if e.action == "version.registered"}
            for operation, status, _, _ in done:
                # The mirror stored the test-case results of the versions new to it; one a
                # webhook's sync mirrored before us gets them here.
                if status == Operation.Status.SUCCEEDED and (
                    f"{operation.template_name}@{operation.version}" not in new
                ):
                    ensure_registration_run(
                        operation.template_name, operation.version, actor=head.batch.actor
                    )
        _record_finished(head, done)
        _give_back(not_tried)
    if transient is None:
        return _outcome_of(done[0]), True, known
    operation, error = transient
    if operation is head:
        return retry_later(head, error=error), False, None
    # Still pending (taken with the chunk, its attempt counted): it waits out its backoff,
    # or fails if that was its last attempt, like a claimed one.
    if operation.attempts >= settings.OPERATION_MAX_RETRIES:
        if Operation.objects.filter(id=operation.id, status=Operation.Status.PENDING).update(
            status=Operation.Status.RUNNING
        ):
            finish(operation, status=Operation.Status.FAILED, error=_gave_up(operation, error))
        return _outcome_of(done[0]), False, None
    delay = retry_delay(operation.attempts)
    Operation.objects.filter(id=operation.id, status=Operation.Status.PENDING).update(
        last_error=redact(error)[:MAX_TEXT],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    send([operation.id], countdown=delay)
    return _outcome_of(done[0]), False, None


def _take_following(head: Operation) -> list[Operation]:
    """The template's next pending registrations in head's batch, taken with it as a chunk.

    They stay pending (one running operation per template: ``head`` holds the template for
    them); their attempts are counted now, so a re-run after a crash looks for their
    writes by operation id. Nothing else moves them meanwhile: a claim waits behind the
    running ``head`` and cancel_failed leaves them alone while ``head`` runs.
    """
    candidates = list(
        Operation.objects.filter(
            batch_id=head.batch_id,
            template_name=head.template_name,
            status=Operation.Status.PENDING,
            position__gt=head.position,
        ).order_by("position")[: CHUNK_OPERATIONS - 1]
    )
    following = []
    for operation in candidates:
        if operation.kind != Operation.Kind.REGISTER or operation.request_id:
            break
        operation.batch = head.batch  # one batch row for the whole chunk
        following.append(operation)
    if not following:
        return []
    now = timezone.now()
    taken = Operation.objects.filter(
        id__in=[op.id for op in following], status=Operation.Status.PENDING
    ).update(attempts=F("attempts") + 1, started_at=now)
    if taken != len(following):  # cancelled just before head was claimed
        still = set(
            Operation.objects.filter(
                id__in=[op.id for op in following], status=Operation.Status.PENDING
            ).values_list("id", flat=True)
        )
        following = [op for op in following if op.id in still]
    for operation in following:
        operation.attempts += 1
        operation.started_at = now
    return following


def _write_registration(operation: Operation, known, registry):
    """Write one version to MLflow; returns its record, the records to mirror and what is
    now known of the template's versions."""
    name = operation.template_name
    if known is None:  # a brand-new template: its model is created here, no version search
        known = registry.gateway.versions_to_register_into(name)
    record = registry.register_operation(
        NewVersion(
            name,
            operation.version,
            operation.payload["template"],
            operation.payload.get("metadata") or {},
            operation_id=str(operation.id),
            extra=operation.payload.get("extra") or {},
        ),
        actor=operation.batch.actor,
        requested_by=operation.batch.on_behalf_of,
        reason=operation.batch.reason,
        run_id_for_batch=lambda: _batch_run_id(operation.batch, registry),
        may_exist=operation.attempts > 1,
        known=known,
    )
    if record.operation_id == str(operation.id):
        if record not in known:
            known = [*known, record]
        return record, [record], known  # just created, in dev: nothing else changed
    # Someone registered this content before us; read stages before mirroring it.
    return record, registry.gateway.list_versions(name), known


def _outcome_of(done: tuple[Operation, str, dict, str]) -> Outcome:
    _, status, _, error = done
    return Outcome(status, error)


def _execute(operation: Operation, known: list[VersionRecord] | None):
    """Write to MLflow and mirror the result; returns the result and what is now known."""
    registry = get_registry()
    if operation.kind == Operation.Kind.REGISTER:
        record, mirrored, known = _write_registration(operation, known, registry)
        mirror_template(
            operation.template_name,
            mirrored,
            source=AuditEvent.Source.WORKER,
            actor=operation.batch.actor,
        )
        # Its test cases' results, stored with the version (the mirror stores them for a
        # version it sees first; a webhook's sync may have mirrored this one before us).
        ensure_registration_run(
            operation.template_name, operation.version, actor=operation.batch.actor
        )
    elif operation.kind == Operation.Kind.RELEASE:
        return execute_release(operation), None
    else:
        intent = _intent_of(operation, registry)
        writes = registry.apply_intent(intent)
        known = None  # stages moved: the next operation reads afresh
        records = registry.gateway.list_versions(operation.template_name)
        mirror_template(
            operation.template_name,
            records,
            source=AuditEvent.Source.WORKER,
            actor=operation.batch.actor,
        )
        record = next(r for r in records if r.version == operation.version)
        return {
            "mlflow_version": record.mlflow_version,
            "stage": record.stage.value,
            "mlflow_writes": writes,
        }, known
    return {"mlflow_version": record.mlflow_version, "stage": record.stage.value}, known


def _intent_of(operation: Operation, registry) -> Intent:
    """The stage move's plan: the recorded one on a re-run, else checked, planned and
    recorded now, before the first MLflow write.

    Only the first run checks the request against the registry (mirroring what it finds as
    outside changes): a re-run's MLflow state may hold its own first writes, which the
    recorded plan explains and the re-run completes.
    """
    if operation.intent:
        return Intent.from_json(operation.intent)
    if operation.request_id:
        check_before_write(operation.request)  # PolicyError: the operation fails
    name, version = operation.template_name, operation.version
    if operation.kind == Operation.Kind.ROLLBACK:
        intent = registry.plan_rollback(name, version)
    else:
        intent = registry.plan_promotion(name, version, operation.target_stage)
    Operation.objects.filter(id=operation.id).update(intent=intent.to_json())
    operation.intent = intent.to_json()
    return intent


def _refused(operation: Operation, error: Exception) -> None:
    """A stage write refused for what someone else did in MLflow: mirror what MLflow has
    now (the outside change is audited as external), and flag the template."""
    name = operation.template_name
    try:
        mirror_template(
            name, get_registry().gateway.list_versions(name), source=AuditEvent.Source.EXTERNAL
        )
    except RegistryUnavailableError:
        logger.warning("could not mirror %s after a refused write; the next sync will", name)
    kind = (
        TemplateFlag.Kind.CONTENT_MISMATCH
        if isinstance(error, ContentMismatchError)
        else TemplateFlag.Kind.WRITE_REFUSED
    )
    raise_flag(name, kind, str(error), version=operation.version, actor=operation.batch.actor)


def _next_pending(template_name: str):
    return (
        Operation.objects.filter(template_name=template_name, status=Operation.Status.PENDING)
        .order_by("batch_id", "position")
        .values_list("id", flat=True)
        .first()
    )


def _batch_run_id(batch: Batch, registry) -> str:
    """One MLflow run per batch, created by whichever operation needs it first."""
    if not batch.run_id:  # set once and never changed: a run id read with the batch holds
        batch.refresh_from_db(fields=["run_id"])
    if batch.run_id:
        return batch.run_id
    run_id = registry.gateway.start_registration_run(
        actor=batch.actor, reason=batch.reason, count=batch.total
    )
    Batch.objects.filter(pk=batch.pk, run_id="").update(run_id=run_id)
    batch.refresh_from_db(fields=["run_id"])
    return batch.run_id


def retry_later(operation: Operation, *, error: str) -> Outcome:
    """A transient failure: pending again, due after its backoff; failed after the last
    attempt, unless it must finish (a stage move that may be half written keeps going).

    Conditional on the attempt number: if the sweeper gave this operation to another
    worker meanwhile, that worker's attempt decides.
    """
    attempts = operation.attempts
    if attempts >= settings.OPERATION_MAX_RETRIES and not must_finish(operation):
        finish(operation, status=Operation.Status.FAILED, error=_gave_up(operation, error))
        return Outcome("failed", error)
    delay = retry_delay(attempts)
    Operation.objects.filter(
        id=operation.id, status=Operation.Status.RUNNING, attempts=attempts
    ).update(
        status=Operation.Status.PENDING,
        last_error=redact(error)[:MAX_TEXT],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        lease_expires_at=None,
    )
    return Outcome("retry", error, retry_in=delay)


def _gave_up(operation: Operation, error: str) -> str:
    return f"gave up after {operation.attempts} attempts; the last error: {error}"


def finish(
    operation: Operation, *, status: str, result: dict | None = None, error: str = ""
) -> None:
    with trail.atomic():
        # Conditional on the attempt: a worker whose operation was taken over after its
        # lease ran out does not finish the new attempt.
        done = Operation.objects.filter(
            id=operation.id, status=Operation.Status.RUNNING, attempts=operation.attempts
        ).update(
            status=status,
            result=result or {},
            last_error=redact(error)[:MAX_TEXT],
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        if done != 1:
            return
        counter = "succeeded" if status == Operation.Status.SUCCEEDED else "failed"
        Batch.objects.filter(pk=operation.batch_id).update(**{counter: F(counter) + 1})
        trail.record_many([_finished_event(operation, status, result or {}, error)])
        if operation.request_id:
            operation_finished(operation, status=status, error=error)
        close_batch_if_done(operation.batch_id)


def _record_finished(head: Operation, done: list[tuple[Operation, str, dict, str]]) -> None:
    """Record a chunk's results (inside trail.atomic()): ``head`` ran, the rest were taken.

    Each row is still moved by a conditional update, so an operation another task has
    recorded meanwhile (after the sweeper gave a stuck one back) is counted once.
    """
    now = timezone.now()
    counts = {"succeeded": 0, "failed": 0}
    events = []
    for operation, status, result, error in done:
        was = Operation.Status.RUNNING if operation.pk == head.pk else Operation.Status.PENDING
        moved = Operation.objects.filter(id=operation.id, status=was).update(
            status=status, result=result, last_error=redact(error)[:MAX_TEXT], finished_at=now
        )
        if moved != 1:
            continue
        counts["succeeded" if status == Operation.Status.SUCCEEDED else "failed"] += 1
        events.append(_finished_event(operation, status, result, error))
    if not events:
        return
    Batch.objects.filter(pk=head.batch_id).update(
        **{counter: F(counter) + n for counter, n in counts.items() if n}
    )
    trail.record_many(events)
    close_batch_if_done(head.batch_id)


def _give_back(operations: list[Operation]) -> None:
    """Operations taken with a chunk but not tried (time was up): not an attempt after all."""
    if operations:
        Operation.objects.filter(
            id__in=[op.id for op in operations], status=Operation.Status.PENDING
        ).update(attempts=F("attempts") - 1)


def _finished_event(operation: Operation, status: str, result: dict, error: str) -> AuditEvent:
    return AuditEvent(
        actor=operation.batch.actor,
        action=f"operation.{status}",
        object_type="operation",
        object_id=str(operation.id),
        before=None,
        after={
            "kind": operation.kind,
            "template": operation.template_name,
            "version": operation.version,
            "target_stage": operation.target_stage or None,
            "result": result,
            "error": error or None,
        },
        source=AuditEvent.Source.WORKER,
    )


def close_batch_if_done(batch_id: int) -> None:
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    if batch.succeeded + batch.failed < batch.total:
        if batch.status == Batch.Status.PENDING:
            batch.status = Batch.Status.RUNNING
            batch.save(update_fields=["status"])
        return
    batch.status = Batch.Status.FAILED if batch.failed else Batch.Status.SUCCEEDED
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "finished_at"])
