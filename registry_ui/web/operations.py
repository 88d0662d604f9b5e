"""Changes to the registry as rows: batches of operations carried out by Celery workers.

Writes happen here (services); tasks.py is a thin Celery interface over them.
- Operations are written in the caller's transaction and sent after commit; the sweeper
  sends any still pending later, so a crash between commit and send loses nothing.
- A worker claims an operation with a conditional UPDATE (exactly one wins); the partial
  unique constraint on running operations serialises work on one template.
- The MLflow write is idempotent through the operation id tag: a re-run finds its earlier
  effect and records it instead of writing again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from registry_ui.core.errors import BatchRegistrationError, RegistryUnavailableError
from registry_ui.core.records import VersionRecord
from registry_ui.core.stages import ModelStage
from registry_ui.registry import NewVersion
from registry_ui.web import audit
from registry_ui.web.mirror import mirror_template
from registry_ui.web.models import AuditEvent, Batch, Operation

logger = logging.getLogger("registry_ui.operations")


@dataclass(frozen=True)
class Outcome:
    """What running an operation did: done, already done, busy, or will retry."""

    status: str
    detail: str = ""


# -- creating work ---------------------------------------------------------------------------


def batch_register(
    *,
    versions: Sequence[NewVersion],
    actor: str,
    reason: str = "",
    user=None,
    source: str = AuditEvent.Source.COMMAND,
) -> Batch | None:
    """File a batch registering these versions; None when every one is registered already.

    The whole batch is checked against the registry first, so a refused version refuses
    the batch and nothing is half applied.
    """
    from registry_ui.prompt_model import get_registry

    registry = get_registry()
    to_register = registry.plan_registrations(versions)  # raises BatchRegistrationError
    if not to_register:
        return None
    with audit.atomic():
        batch = Batch.objects.create(
            actor=actor, reason=reason, created_by=user, total=len(to_register)
        )
        operations = Operation.objects.bulk_create(
            Operation(
                id=uuid.uuid4(),
                batch=batch,
                kind=Operation.Kind.REGISTER,
                template_name=new.name,
                version=new.version,
                payload={"template": new.template, "metadata": new.metadata},
                position=position,
            )
            for position, new in enumerate(to_register)
        )
        _audit_batch(batch, "batch.registration_filed", source, operations)
        send_after_commit([op.id for op in operations])
    return batch


def batch_transition(
    *,
    moves: Iterable[tuple[str, str, ModelStage | str]],
    actor: str,
    reason: str = "",
    user=None,
    source: str = AuditEvent.Source.COMMAND,
) -> Batch:
    moves = [(name, version, ModelStage.parse(stage)) for name, version, stage in moves]
    if not moves:
        raise BatchRegistrationError(["no stage moves were given"])
    with audit.atomic():
        batch = Batch.objects.create(actor=actor, reason=reason, created_by=user, total=len(moves))
        operations = Operation.objects.bulk_create(
            Operation(
                id=uuid.uuid4(),
                batch=batch,
                kind=Operation.Kind.TRANSITION,
                template_name=name,
                version=version,
                target_stage=stage.value,
                position=position,
            )
            for position, (name, version, stage) in enumerate(moves)
        )
        _audit_batch(batch, "batch.transition_filed", source, operations)
        send_after_commit([op.id for op in operations])
    return batch


def send_after_commit(operation_ids: Sequence[uuid.UUID]) -> None:
    def send() -> None:
        from registry_ui.web.tasks import run_operation

        for operation_id in operation_ids:
            try:
                run_operation.delay(str(operation_id))
            except Exception:  # the broker is down: the sweeper sends it later
                logger.exception("could not send operation %s; the sweeper will", operation_id)

    transaction.on_commit(send)


def _audit_batch(batch: Batch, action: str, source: str, operations: list[Operation]) -> None:
    audit.record(
        actor=batch.actor,
        action=action,
        object_type="batch",
        object_id=str(batch.pk),
        before=None,
        after={
            "reason": batch.reason,
            "operations": [
                {
                    "id": str(op.id),
                    "template": op.template_name,
                    "version": op.version,
                    "target_stage": op.target_stage or None,
                }
                for op in operations
            ],
        },
        source=source,
    )


# -- carrying it out -------------------------------------------------------------------------


class Busy(Exception):
    """Another operation on the same template runs or comes first; this one waits."""


def claim(operation_id: str) -> Operation | None:
    """Move one pending operation to running; None if another worker has it or it is done.

    Raises Busy while an earlier operation on the same template is pending, or another is
    running (the partial unique constraint refuses a second running one): versions of a
    template must be written in order, one at a time.
    """
    mine = (
        Operation.objects.filter(id=operation_id)
        .values("template_name", "batch_id", "position")
        .first()
    )
    if mine is None:
        return None
    if _earlier_open(mine).exists():
        raise Busy(mine["template_name"])
    try:
        with transaction.atomic():
            won = Operation.objects.filter(id=operation_id, status=Operation.Status.PENDING).update(
                status=Operation.Status.RUNNING,
                attempts=F("attempts") + 1,
                started_at=timezone.now(),
            )
    except IntegrityError:
        raise Busy(mine["template_name"]) from None
    if won != 1:
        return None
    return Operation.objects.select_related("batch", "request__template", "request__version").get(
        id=operation_id
    )


# How long one task keeps carrying out a template's following operations before it hands
# the rest to a new task (so a long batch does not hold one worker past its time limit).
CHAIN_SECONDS = 20.0


def run(operation_id: str) -> Outcome:
    """Carry out one operation, then the same template's following ones, in this task.

    Versions of a template are written in order, one at a time, so what this task read of
    the template stays true while it goes on: one registry read serves the whole chain
    and each further version costs one MLflow create call.
    """
    # Well inside the task's hard time limit, which kills the task mid-operation.
    deadline = time.monotonic() + min(CHAIN_SECONDS, settings.OPERATION_TIME_LIMIT_SECONDS / 2)
    outcome, operation, known = _run_one(operation_id, known=None)
    while outcome.status in ("succeeded", "failed") and operation is not None:
        following = _next_pending(operation.template_name)
        if following is None:
            break
        if time.monotonic() > deadline:
            send_after_commit([following])
            break
        next_outcome, next_operation, known = _run_one(str(following), known=known)
        if next_outcome.status == "retry":
            # Given back to pending: a task of its own retries it, with backoff and a limit.
            send_after_commit([following])
            break
        if next_outcome.status in ("busy", "skipped"):
            break  # someone else has the template now
        operation = next_operation
    return outcome


def _run_one(operation_id: str, *, known):
    try:
        operation = claim(operation_id)
    except Busy:
        # Not lost: the task running the template's earlier operation carries on with this
        # one (and the sweeper re-sends anything left pending).
        return Outcome("busy", "another operation on this template runs or comes first"), None, None
    if operation is None:
        return Outcome("skipped", "not pending: done, cancelled or claimed elsewhere"), None, None
    try:
        result, known = _execute(operation, known)
    except RegistryUnavailableError as error:
        release(operation, error=str(error))
        return Outcome("retry", str(error)), None, None
    except (ValueError, LookupError) as error:  # refused by the registry rules or MLflow
        finish(operation, status=Operation.Status.FAILED, error=str(error))
        return Outcome("failed", str(error)), operation, None
    finish(operation, status=Operation.Status.SUCCEEDED, result=result)
    return Outcome("succeeded"), operation, known


def _execute(operation: Operation, known: list[VersionRecord] | None):
    """Write to MLflow and mirror the result; returns the result and what is now known."""
    from registry_ui.prompt_model import get_registry

    registry = get_registry()
    if operation.kind == Operation.Kind.REGISTER:
        if known is None:
            known = registry.gateway.list_versions_many([operation.template_name], stages=False)[
                operation.template_name
            ]
        record = registry.register_operation(
            NewVersion(
                operation.template_name,
                operation.version,
                operation.payload["template"],
                operation.payload.get("metadata") or {},
                operation_id=str(operation.id),
            ),
            actor=operation.batch.actor,
            reason=operation.batch.reason,
            run_id_for_batch=lambda: _batch_run_id(operation.batch, registry),
            may_exist=operation.attempts > 1,
            known=known,
        )
        if record.operation_id == str(operation.id):
            if record not in known:
                known = [*known, record]
            mirrored = [record]  # just created, in dev: nothing else changed
        else:
            # Someone registered this content before us; read stages before mirroring it.
            mirrored = registry.gateway.list_versions(operation.template_name)
        mirror_template(
            operation.template_name,
            mirrored,
            source=AuditEvent.Source.WORKER,
            actor=operation.batch.actor,
        )
    elif operation.kind == Operation.Kind.RELEASE:
        from registry_ui.web.approvals import execute_release

        return execute_release(operation), None
    else:
        if operation.request_id:
            from registry_ui.web.approvals import check_before_write

            check_before_write(operation.request)  # PolicyError: the operation fails
        if operation.kind == Operation.Kind.ROLLBACK:
            record = registry.rollback(operation.template_name, operation.version)
        else:
            record = registry.promote(
                operation.template_name, operation.version, operation.target_stage
            )
        known = None  # stages moved: the next operation reads afresh
        mirror_template(
            operation.template_name,
            registry.gateway.list_versions(operation.template_name),
            source=AuditEvent.Source.WORKER,
            actor=operation.batch.actor,
        )
    return {"mlflow_version": record.mlflow_version, "stage": record.stage.value}, known


def _next_pending(template_name: str):
    return (
        Operation.objects.filter(template_name=template_name, status=Operation.Status.PENDING)
        .order_by("batch_id", "position")
        .values_list("id", flat=True)
        .first()
    )


def _batch_run_id(batch: Batch, registry) -> str:
    """One MLflow run per batch, created by whichever operation needs it first."""
    batch.refresh_from_db(fields=["run_id"])
    if batch.run_id:
        return batch.run_id
    run_id = registry.gateway.start_registration_run(
        actor=batch.actor, reason=batch.reason, count=batch.total
    )
    Batch.objects.filter(pk=batch.pk, run_id="").update(run_id=run_id)
    batch.refresh_from_db(fields=["run_id"])
    return batch.run_id


def release(operation: Operation, *, error: str) -> None:
    """Give a running operation back (a transient failure): pending again, error kept."""
    Operation.objects.filter(id=operation.id, status=Operation.Status.RUNNING).update(
        status=Operation.Status.PENDING, last_error=error[:5000]
    )


def finish(
    operation: Operation, *, status: str, result: dict | None = None, error: str = ""
) -> None:
    with audit.atomic():
        done = Operation.objects.filter(id=operation.id, status=Operation.Status.RUNNING).update(
            status=status,
            result=result or {},
            last_error=error[:5000],
            finished_at=timezone.now(),
        )
        if done != 1:
            return
        counter = "succeeded" if status == Operation.Status.SUCCEEDED else "failed"
        Batch.objects.filter(pk=operation.batch_id).update(**{counter: F(counter) + 1})
        audit.record(
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
                "result": result or {},
                "error": error or None,
            },
            source=AuditEvent.Source.WORKER,
        )
        if operation.request_id:
            from registry_ui.web.approvals import operation_finished

            operation_finished(operation, status=status, error=error)
        _close_batch_if_done(operation.batch_id)


def _earlier_open(mine: dict):
    return Operation.objects.filter(
        Q(batch_id__lt=mine["batch_id"])
        | Q(batch_id=mine["batch_id"], position__lt=mine["position"]),
        template_name=mine["template_name"],
        status__in=[Operation.Status.PENDING, Operation.Status.RUNNING],
    )


def give_up(operation_id: str, *, error: str) -> None:
    """A transient failure outlasted its retries: the operation fails with the last error."""
    operation = Operation.objects.select_related("batch").get(id=operation_id)
    won = Operation.objects.filter(id=operation_id, status=Operation.Status.PENDING).update(
        status=Operation.Status.RUNNING
    )
    if won == 1:
        finish(operation, status=Operation.Status.FAILED, error=f"gave up after retries: {error}")


def _close_batch_if_done(batch_id: int) -> None:
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    if batch.succeeded + batch.failed < batch.total:
        if batch.status == Batch.Status.PENDING:
            batch.status = Batch.Status.RUNNING
            batch.save(update_fields=["status"])
        return
    batch.status = Batch.Status.FAILED if batch.failed else Batch.Status.SUCCEEDED
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "finished_at"])


# -- the sweeper -----------------------------------------------------------------------------


def sweep(*, now=None) -> dict[str, int]:
    """Send operations left pending, and give back ones stuck running past the time limit."""
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.OPERATION_TIME_LIMIT_SECONDS)
    reset = Operation.objects.filter(
        status=Operation.Status.RUNNING, started_at__lt=stuck_before
    ).update(status=Operation.Status.PENDING, last_error="reset by the sweeper: ran too long")
    pending_before = now - timedelta(seconds=settings.OPERATION_SEND_GRACE_SECONDS)
    pending = list(
        Operation.objects.filter(
            status=Operation.Status.PENDING, created_at__lt=pending_before
        ).values_list("id", flat=True)[:1000]
    )
    from registry_ui.web.tasks import run_operation

    for operation_id in pending:
        run_operation.delay(str(operation_id))
    return {"reset": reset, "sent": len(pending)}


def retry_failed(operation_ids: Iterable[str], *, actor: str) -> int:
    """Put failed operations back in the queue (the retry button and command)."""
    ids = list(operation_ids)
    with audit.atomic():
        operations = list(
            Operation.objects.select_for_update().filter(id__in=ids, status=Operation.Status.FAILED)
        )
        for operation in operations:
            Operation.objects.filter(id=operation.id).update(
                status=Operation.Status.PENDING, finished_at=None
            )
            Batch.objects.filter(pk=operation.batch_id).update(
                failed=F("failed") - 1, status=Batch.Status.RUNNING, finished_at=None
            )
            audit.record(
                actor=actor, action="operation.retried", object_type="operation",
                object_id=str(operation.id), before={"status": "failed"},
                after={"status": "pending"}, source=AuditEvent.Source.COMMAND,
            )  # fmt: skip
        send_after_commit([op.id for op in operations])
    return len(operations)


def cancel_failed(operation_ids: Iterable[str], *, actor: str) -> int:
    """Cancel failed or pending operations so the sweeper stops sending them."""
    ids = list(operation_ids)
    cancelled = 0
    with audit.atomic():
        for operation in Operation.objects.select_for_update().filter(
            id__in=ids, status__in=[Operation.Status.FAILED, Operation.Status.PENDING]
        ):
            before = operation.status
            Operation.objects.filter(id=operation.id).update(
                status=Operation.Status.CANCELLED, finished_at=timezone.now()
            )
            if before == Operation.Status.PENDING:
                Batch.objects.filter(pk=operation.batch_id).update(failed=F("failed") + 1)
            audit.record(
                actor=actor, action="operation.cancelled", object_type="operation",
                object_id=str(operation.id), before={"status": before},
                after={"status": "cancelled"}, source=AuditEvent.Source.COMMAND,
            )  # fmt: skip
            _close_batch_if_done(operation.batch_id)
            cancelled += 1
    return cancelled
