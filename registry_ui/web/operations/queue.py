"""Filing work for the workers: batches of registrations and stage moves, retries.

- Operations are written in the caller's transaction and sent after commit; the sweeper
  sends any still pending later, so a crash between commit and send loses nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from registry_ui.core.errors import BatchRegistrationError
from registry_ui.core.policy import PolicyError
from registry_ui.core.records import VersionRecord
from registry_ui.core.stages import ModelStage
from registry_ui.prompt_model import get_registry
from registry_ui.registry import NewVersion
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, Batch, Operation, TemplateVersion
from registry_ui.web.models.prompts import OLDEST_FIRST
from registry_ui.web.operations import tasks
from registry_ui.web.operations.worker import close_batch_if_done
from registry_ui.web.prompts import authorship


def batch_register(
    *,
    versions: Sequence[NewVersion],
    actor: str,
    reason: str = "",
    user=None,
    source: str = AuditEvent.Source.COMMAND,
    against_mirror: bool = False,
    on_behalf_of: str = "",
) -> Batch | None:
    """File a batch registering these versions; None when every one is registered already.

    Filed by an account (``user``: the dashboard, register_templates), the account is the
    registrant and the versions' authors are checked first (registry_ui.web.prompts.
    authorship): a metadata author naming no author's account is refused, and a CI account
    names the person who asked (``on_behalf_of``), recorded with every version.

    The whole batch is checked against the registry first, so a refused version refuses
    the batch and nothing is half applied. ``against_mirror``: checked against the
    dashboard's mirror instead of MLflow, so a web request makes no MLflow call and files
    while MLflow is down or slow; the worker checks each version against MLflow before it
    writes, and a refusal shows on the batch's page.
    """
    requested_by, authors = "", None
    if user is not None:
        actor = user.get_username()
        requested_by, authors = authorship.registration_authors(
            user, on_behalf_of=on_behalf_of, versions=versions
        )
    elif on_behalf_of:
        raise PolicyError("on_behalf_of is for a CI account's batch: give the account (user)")
    registry = get_registry()
    existing = _mirrored({v.name for v in versions}) if against_mirror else None
    to_register = registry.plan_registrations(versions, existing=existing)  # may refuse
    if not to_register:
        return None
    with trail.atomic():
        batch = Batch.objects.create(
            actor=actor,
            on_behalf_of=requested_by,
            reason=reason,
            created_by=user,
            total=len(to_register),
        )
        operations = Operation.objects.bulk_create(
            Operation(
                id=uuid.uuid4(),
                batch=batch,
                kind=Operation.Kind.REGISTER,
                template_name=new.name,
                version=new.version,
                payload={"template": new.template, "metadata": new.metadata}
                | ({"extra": new.extra} if new.extra else {}),
                position=position,
            )
            for position, new in enumerate(to_register)
        )
        _audit_batch(batch, "batch.registration_filed", source, operations, authors=authors)
        tasks.send_after_commit(_firsts_first(operations))
    return batch


def _mirrored(names: set[str]) -> dict[str, list[VersionRecord]]:
    """The mirror's versions of these templates, as the records registration plans compare."""
    by_name: dict[str, list[VersionRecord]] = {name: [] for name in names}
    rows = (
        TemplateVersion.objects.filter(template__name__in=names)
        .select_related("template")
        .order_by("template__name", *OLDEST_FIRST)
    )
    for row in rows:
        by_name[row.template.name].append(
            VersionRecord(
                name=row.template.name,
                version=row.version,
                template=row.text,
                metadata=row.metadata,
                stage=ModelStage(row.stage),
                mlflow_version=row.mlflow_version,
                content_sha256=row.content_sha256,
            )
        )
    return by_name


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
    with trail.atomic():
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
        tasks.send_after_commit(_firsts_first(operations))
    return batch


def _firsts_first(operations: list[Operation]) -> list[uuid.UUID]:
    """The batch's operation ids with every template's first operation first, then seconds...

    The task of a template's first operation carries out the template's others too (see
    run), so their messages usually find them done. Sent in this order, the next message a
    free worker takes starts another template instead of finding one in progress busy.
    """
    seen: dict[str, int] = {}
    ranked = []
    for op in operations:  # in position order
        rank = seen[op.template_name] = seen.get(op.template_name, -1) + 1
        ranked.append((rank, op.position, op.id))
    return [operation_id for _, _, operation_id in sorted(ranked)]


def _audit_batch(
    batch: Batch,
    action: str,
    source: str,
    operations: list[Operation],
    *,
    authors: dict[tuple[str, str], str] | None = None,
) -> None:
    after = {
        "reason": batch.reason,
        "operations": [
            {
                "id": str(op.id),
                "template": op.template_name,
                "version": op.version,
                "target_stage": op.target_stage or None,
                # Registrations: the account the metadata author resolved to ("" for none).
                **(
                    {"author": authors.get((op.template_name, op.version), "")}
                    if authors is not None
                    else {}
                ),
            }
            for op in operations
        ],
    }
    if batch.on_behalf_of:
        after["on_behalf_of"] = batch.on_behalf_of
    trail.record(
        actor=batch.actor,
        action=action,
        object_type="batch",
        object_id=str(batch.pk),
        before=None,
        after=after,
        source=source,
    )


def retry_failed(
    operation_ids: Iterable[str], *, actor: str, source: str = AuditEvent.Source.COMMAND
) -> int:
    """Put failed operations back in the queue (the retry button and command).

    ``source`` is who asked, for the audit trail: the command by default, "dashboard" from
    the dashboard's retry button.
    """
    ids = list(operation_ids)
    with trail.atomic():
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
            trail.record(
                actor=actor, action="operation.retried", object_type="operation",
                object_id=str(operation.id), before={"status": "failed"},
                after={"status": "pending"}, source=source,
            )  # fmt: skip
        tasks.send_after_commit([op.id for op in operations])
    return len(operations)


def cancel_failed(operation_ids: Iterable[str], *, actor: str) -> int:
    """Cancel failed or pending operations so the sweeper stops sending them.

    A pending registration taken into the chunk of its template's running operation is
    under way, not waiting (see _take_following): it is left alone.
    """
    ids = list(operation_ids)
    cancelled = 0
    taken = Operation.objects.filter(
        template_name=OuterRef("template_name"),
        status=Operation.Status.RUNNING,
        started_at__lte=OuterRef("started_at"),
    )
    with trail.atomic():
        for operation in (
            Operation.objects.select_for_update()
            .filter(id__in=ids, status__in=[Operation.Status.FAILED, Operation.Status.PENDING])
            .exclude(Q(status=Operation.Status.PENDING) & Q(Exists(taken)))
        ):
            before = operation.status
            Operation.objects.filter(id=operation.id).update(
                status=Operation.Status.CANCELLED, finished_at=timezone.now()
            )
            if before == Operation.Status.PENDING:
                Batch.objects.filter(pk=operation.batch_id).update(failed=F("failed") + 1)
            trail.record(
                actor=actor, action="operation.cancelled", object_type="operation",
                object_id=str(operation.id), before={"status": before},
                after={"status": "cancelled"}, source=AuditEvent.Source.COMMAND,
            )  # fmt: skip
            close_batch_if_done(operation.batch_id)
            cancelled += 1
    return cancelled


def operations_retry(user, *, operation_ids: Iterable[str]) -> int:
    """Put failed operations back in the queue; how many were.

    Operations that carry out a promotion request are not retried here: the request
    failed with them and its approvals were for that attempt, so a new request is filed.
    """
    permissions.require_any(user, permissions.AUTHOR_OR_REVIEWER, "retrying operations")
    ids = []
    for text in operation_ids:
        try:
            ids.append(uuid.UUID(str(text)))
        except ValueError:
            raise PolicyError(f"{str(text)[:60]!r} is not an operation id") from None
    tied = list(
        Operation.objects.filter(id__in=ids, request__isnull=False).values_list(
            "request_id", flat=True
        )
    )
    if tied:
        listed = ", ".join(f"#{pk}" for pk in sorted(set(tied)))
        raise PolicyError(
            f"this operation carries out promotion request {listed}: it is not retried here. "
            "The request failed with it; file a new request for the version instead"
        )
    return retry_failed([str(i) for i in ids], actor=user.get_username(), source="dashboard")
