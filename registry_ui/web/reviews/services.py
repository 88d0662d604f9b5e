"""Promotion and rollback requests: filing, approving, rejecting, withdrawing, comments.

Every state change is authorised here (not only hidden in templates), audited in the same
transaction, and safe to retry. The rules themselves live in registry_ui.core.policy; this
module feeds them the mirror's facts and writes the outcome. Approved requests become
operations (registry_ui.web.operations) that a worker carries out after checking the
policy once more against MLflow itself (registry_ui.web.reviews.execution)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.policy import (
    ApprovalPolicy,
    GateResult,
    PolicyError,
    check_request_path,
    check_reviewer,
    evaluate_gate_across,
)
from registry_ui.core.stages import ModelStage
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.checks import services as version_checks
from registry_ui.web.experiments import results as experiment_results
from registry_ui.web.models import (
    Approval,
    AuditEvent,
    Batch,
    Operation,
    PromotionRequest,
    RequestComment,
    Template,
    TemplateVersion,
)
from registry_ui.web.operations.tasks import send_after_commit
from registry_ui.web.prompts import authorship
from registry_ui.web.reviews.selectors import locked_request, version_row
from registry_ui.web.reviews.staleness import refresh_staleness
from registry_ui.web.reviews.trail import announce, audit_request, close, describe

Status = PromotionRequest.Status


Kind = PromotionRequest.Kind


def approval_policy() -> ApprovalPolicy:
    return ApprovalPolicy(**settings.APPROVALS_REQUIRED)


def clean_text(value: str | None, field: str, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        raise PolicyError(f"{field} is required: write why")
    if len(text) > MAX_TEXT:
        raise PolicyError(f"{field} is {len(text)} characters long: at most {MAX_TEXT} accepted")
    return text


def authors_field(versions: Iterable[TemplateVersion]) -> str:
    """ ",alice,ci-bot," : every name that may not approve these versions (authorship)."""
    names = sorted({n for v in versions for n in authorship.refused_reviewers(v)})
    return "," + "".join(f"{n}," for n in names)


def authors_in(field: str) -> list[str]:
    return [n for n in field.split(",") if n]


def gate_for(version: TemplateVersion) -> GateResult:
    """The metric gate of a version going to production, over every experiment that served
    it (no data until one has)."""
    observations = experiment_results.observations_for(version)
    return evaluate_gate_across(
        version.metadata, observations, min_samples=settings.GATE_MIN_SAMPLES
    )


def refresh_gate(
    request: PromotionRequest, *, actor: str, cause: str, source: str, always_audit: bool = False
) -> list[PromotionRequest]:
    """Evaluate the metric gate of an open production request again (each production item
    of a release), store it, and audit it when it changed (or always, when asked).

    Returns the requests (the request itself or release items) whose gate now fails.
    """
    rows = list(request.items.all()) if request.kind == Kind.RELEASE else [request]
    failing = []
    for row in rows:
        if row.target_stage != ModelStage.PRODUCTION or row.version_id is None:
            continue
        gate = gate_for(row.version)
        now = {"status": gate.status, "detail": gate.detail}
        before = row.gate or {}
        if now != before:
            row.gate = now
            row.save(update_fields=["gate"])
        if now != before or always_audit:
            audit_request(
                actor,
                "request.gate_reevaluated",
                row,
                {
                    "cause": cause,
                    "before": before or None,
                    "after": now,
                    "changed": now.get("status") != before.get("status"),
                },
                source,
            )
        if gate.failing:
            failing.append(row)
    return failing


def file_request(
    user,
    *,
    template_name: str,
    version: str,
    target: str,
    justification: str,
    source: str = AuditEvent.Source.DASHBOARD,
) -> PromotionRequest:
    """Request to move one exact version to staging or production (dev->staging->production)."""
    permissions.require(user, "request_promotion", "requesting a promotion")
    justification = clean_text(justification, "a justification", required=True)
    try:
        stage = ModelStage.parse(target)
    except ValueError as error:
        raise PolicyError(str(error)) from None
    with trail.atomic():
        row = version_row(template_name, version)
        template = Template.objects.select_for_update().get(pk=row.template_id)
        row.refresh_from_db()
        label = f"{template_name} {version}"
        check_request_path("promote", ModelStage(row.stage), stage, label)
        return _create(
            user,
            kind=Kind.PROMOTE,
            template=template,
            row=row,
            target=stage,
            justification=justification,
            required=approval_policy().required("promote", stage),
            source=source,
        )


def file_rollback(
    user,
    *,
    template_name: str,
    version: str,
    reason: str,
    source: str = AuditEvent.Source.DASHBOARD,
) -> PromotionRequest:
    """A reviewer moves production back to a version that held it before."""
    permissions.require(user, "rollback_production", "rolling production back")
    reason = clean_text(reason, "a reason", required=True)
    with trail.atomic():
        row = version_row(template_name, version)
        template = Template.objects.select_for_update().get(pk=row.template_id)
        row.refresh_from_db()
        label = f"{template_name} {version}"
        check_request_path("rollback", ModelStage(row.stage), ModelStage.PRODUCTION, label)
        if not row.was_production:
            raise PolicyError(
                f"{label}: never held production, so production cannot be rolled back to it"
            )
        request = _create(
            user,
            kind=Kind.ROLLBACK,
            template=template,
            row=row,
            target=ModelStage.PRODUCTION,
            justification=reason,
            required=approval_policy().required("rollback", ModelStage.PRODUCTION),
            source=source,
        )
        if request.required_approvals == 0:
            _start(request, actor=user.get_username(), source=source)
        return request


def _create(user, *, kind, template, row, target, justification, required, source):
    label = f"{template.name} {row.version}"
    if row.missing_since is not None:
        raise PolicyError(f"{label} was deleted in MLflow: it cannot be promoted")
    if row.tampered_at is not None:
        raise PolicyError(
            f"{label}: its text in MLflow was changed after it was registered (it no longer "
            "matches its content hash), so it cannot be promoted; register the intended text "
            "as a new version"
        )
    already = PromotionRequest.objects.filter(
        version=row, target_stage=target.value, status__in=PromotionRequest.ACTIVE
    ).first()
    if already is not None:
        raise PolicyError(
            f"{label}: request #{already.pk} to move it to {target} is {already.status} already"
        )
    gate = gate_for(row) if target == ModelStage.PRODUCTION else None
    checks = version_checks.snapshot(row, actor=user.get_username()) if kind == Kind.PROMOTE else {}
    try:
        with trail.atomic():
            request = PromotionRequest.objects.create(
                kind=kind,
                template=template,
                version=row,
                content_sha256=row.content_sha256,
                from_stage=row.stage,
                target_stage=target.value,
                basis_epoch=template.stage_epoch,
                requester=user,
                version_authors=authors_field([row]),
                justification=justification,
                required_approvals=required,
                gate={"status": gate.status, "detail": gate.detail} if gate else {},
                checks=checks,
            )
    except IntegrityError:
        raise PolicyError(f"{label}: a request to move it to {target} is open already") from None
    audit_request(
        user.get_username(),
        "request.filed" if kind == Kind.PROMOTE else "rollback.filed",
        request,
        {**describe(request), "justification": justification, "required": required},
        source,
    )
    announce(request, "filed")
    return request


def approve(
    user,
    request_id: int,
    *,
    comment: str = "",
    gate_reason: str = "",
    checks_reason: str = "",
    source: str = AuditEvent.Source.DASHBOARD,
) -> PromotionRequest:
    """Approve as a reviewer; the last approval needed turns the request into an operation.

    Retrying an approval already given changes nothing. While the request's test cases
    fail, approving needs ``checks_reason``: the written reason to override them.
    """
    permissions.require(user, "approve_promotion", "approving a request")
    comment = clean_text(comment, "the comment", required=False)
    gate_reason = clean_text(
        gate_reason, "the reason for approving despite the gate", required=False
    )
    checks_reason = clean_text(
        checks_reason, "the reason for overriding the checks", required=False
    )
    refresh_staleness(request_id)
    # The gate as it is now (outcomes counted, experiments changed since filing), stored and
    # audited in its own transaction: it stands even when this approval is refused.
    with trail.atomic():
        request = locked_request(request_id)
        if request.status == Status.OPEN:
            refresh_gate(request, actor=user.get_username(), cause="approval", source=source)
    with trail.atomic():
        request = locked_request(request_id)
        username = user.get_username()
        if request.approvals.filter(reviewer=user).exists():
            return request  # a retried click: already approved
        _check_open(request, "approved")
        check_reviewer(
            username,
            requester=request.requester.get_username(),
            authors=authors_in(request.version_authors),
            label=request.label,
        )
        failing_gates = [
            row
            for row in (request.items.all() if request.kind == Kind.RELEASE else [request])
            if (row.gate or {}).get("status") == "fail"
        ]
        if failing_gates and not gate_reason:
            detail = "; ".join(
                f"{row.label}: {row.gate.get('detail')}"
                if row is not request
                else str(row.gate.get("detail"))
                for row in failing_gates
            )
            raise PolicyError(
                f"{request.label}: the metric gate fails ({detail}): approving anyway needs "
                "a written reason"
            )
        failing = version_checks.failing_cases(request)
        if failing and not checks_reason:
            raise PolicyError(
                f"{request.label}: test cases fail ({'; '.join(failing)}): approving anyway "
                "needs a written reason to override the checks"
            )
        Approval.objects.create(
            request=request,
            reviewer=user,
            reviewer_username=username,
            requester_id=request.requester_id,
            version_authors=request.version_authors,
            comment=comment,
            gate_override_reason=gate_reason,
            checks_override_reason=checks_reason,
        )
        if comment or gate_reason or checks_reason:
            text = comment if not gate_reason else f"{comment}\n\nGate override: {gate_reason}"
            if checks_reason:
                text = f"{text}\n\nChecks override: {checks_reason}"
            RequestComment.objects.create(
                request=request,
                author=user,
                author_username=username,
                kind=RequestComment.Kind.APPROVAL,
                text=text.strip(),
            )
        count = request.valid_approvals()
        audit_request(
            username,
            "request.approved",
            request,
            {
                "approvals": count,
                "required": request.required_approvals,
                "comment": comment or None,
                "gate": request.gate or None,
                "gate_override_reason": gate_reason or None,
                "checks_failing": failing or None,
                "checks_override_reason": checks_reason or None,
            },
            source,
        )
        if count >= request.required_approvals:
            _start(request, actor=username, source=source)
        else:
            announce(request, "approved")
        return request


def reject(
    user, request_id: int, *, comment: str, source: str = AuditEvent.Source.DASHBOARD
) -> PromotionRequest:
    permissions.require(user, "approve_promotion", "rejecting a request")
    comment = clean_text(comment, "a comment saying why it is rejected", required=True)
    with trail.atomic():
        request = locked_request(request_id)
        if request.status == Status.REJECTED:
            return request  # a retried click
        _check_open(request, "rejected")
        if request.requester_id == user.pk:
            raise PolicyError(f"{request.label}: you filed it; withdraw it instead of rejecting")
        RequestComment.objects.create(
            request=request,
            author=user,
            author_username=user.get_username(),
            kind=RequestComment.Kind.REJECTION,
            text=comment,
        )
        close(request, Status.REJECTED, comment, actor=user.get_username(), source=source)
        return request


def withdraw(
    user, request_id: int, *, source: str = AuditEvent.Source.DASHBOARD
) -> PromotionRequest:
    with trail.atomic():
        request = locked_request(request_id)
        permissions.require_withdraw(user, request)
        if request.status == Status.WITHDRAWN:
            return request
        _check_open(request, "withdrawn")
        close(request, Status.WITHDRAWN, "withdrawn", actor=user.get_username(), source=source)
        return request


def add_comment(
    user, request_id: int, *, text: str, source: str = AuditEvent.Source.DASHBOARD
) -> RequestComment:
    permissions.require(user, "comment_request", "commenting")
    text = clean_text(text, "the comment", required=True)
    with trail.atomic():
        request = PromotionRequest.objects.get(pk=request_id)
        comment = RequestComment.objects.create(
            request=request, author=user, author_username=user.get_username(), text=text
        )
        audit_request(user.get_username(), "request.commented", request, {"comment": text}, source)
    return comment


def _check_open(request: PromotionRequest, verb: str) -> None:
    if request.release_id:
        raise PolicyError(
            f"{request.label} is part of release #{request.release_id}: the release is "
            f"{verb} as a whole"
        )
    if request.status != Status.OPEN:
        reason = f" ({request.outcome})" if request.outcome else ""
        raise PolicyError(
            f"{request.label} is {request.status}{reason}: only open requests can be {verb}"
        )


def _start(request: PromotionRequest, *, actor: str, source: str) -> Operation:
    """Enough approvals: the request becomes one operation (the OneToOne keeps it one)."""
    request.status = Status.EXECUTING
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    if request.kind == Kind.RELEASE:
        request.items.filter(status=Status.OPEN).update(status=Status.EXECUTING)
    kind = {
        Kind.PROMOTE: Operation.Kind.TRANSITION,
        Kind.ROLLBACK: Operation.Kind.ROLLBACK,
        Kind.RELEASE: Operation.Kind.RELEASE,
    }[request.kind]
    batch = Batch.objects.create(
        actor=request.requester.get_username(),
        reason=request.justification,
        created_by=request.requester,
        total=1,
    )
    operation = Operation.objects.create(
        id=uuid.uuid4(),
        batch=batch,
        kind=kind,
        request=request,
        template_name=(
            f"release#{request.pk}" if request.kind == Kind.RELEASE else request.template.name
        ),
        version="" if request.kind == Kind.RELEASE else request.version.version,
        target_stage=request.target_stage,
    )
    audit_request(
        actor,
        "request.approved_for_execution",
        request,
        {"operation": str(operation.id), "approvals": request.valid_approvals()},
        source,
    )
    announce(request, "executing")
    send_after_commit([operation.id])
    return operation
