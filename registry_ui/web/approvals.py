"""Promotion requests, approvals, rollbacks and releases: the review services.

Every state change is authorised here (not only hidden in templates), audited in the same
transaction, and safe to retry. The rules themselves live in registry_ui.core.policy; this
module feeds them the mirror's facts and writes the outcome. Approved requests become
operations (registry_ui.web.operations) that a worker carries out after checking the
policy once more against MLflow itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.policy import (
    ApprovalPolicy,
    CurrentFacts,
    GateResult,
    ItemPlan,
    PolicyError,
    ReleaseItem,
    RequestFacts,
    VersionState,
    check_request_path,
    check_reviewer,
    evaluate_gate,
    execution_problems,
    plan_release,
    stale_reason,
)
from registry_ui.core.stages import ModelStage
from registry_ui.web import audit
from registry_ui.web import checks as version_checks
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

Status = PromotionRequest.Status
Kind = PromotionRequest.Kind
MAX_TEXT = 5000
PERMISSION_ROLES = {
    "request_promotion": "authors",
    "approve_promotion": "reviewers",
    "rollback_production": "reviewers",
    "comment_request": "authors or reviewers",
}


def approval_policy() -> ApprovalPolicy:
    return ApprovalPolicy(**settings.APPROVALS_REQUIRED)


def require(user, codename: str, action: str) -> None:
    """Refuse (403) unless the user holds the permission; the message names the role."""
    if not (user and user.is_authenticated and user.is_active):
        raise PermissionDenied(f"sign in to {action}")
    if not user.has_perm(f"registry_web.{codename}"):
        role = PERMISSION_ROLES.get(codename, "a role with that permission")
        raise PermissionDenied(f"{action} needs the {codename} permission ({role})")


def _text(value: str | None, field: str, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        raise PolicyError(f"{field} is required: write why")
    if len(text) > MAX_TEXT:
        raise PolicyError(f"{field} is {len(text)} characters long: at most {MAX_TEXT} accepted")
    return text


def _authors_field(versions: Iterable[TemplateVersion]) -> str:
    names = sorted({n for v in versions for n in (v.author, v.registered_by) if n})
    return "," + "".join(f"{n}," for n in names)


def _authors(field: str) -> list[str]:
    return [n for n in field.split(",") if n]


def _audit(actor: str, action: str, request: PromotionRequest, after: dict, source: str):
    audit.record(
        actor=actor,
        action=action,
        object_type="promotion_request",
        object_id=str(request.pk),
        before=None,
        after=after,
        source=source,
    )


def _describe(request: PromotionRequest) -> dict:
    if request.kind == Kind.RELEASE:
        return {
            "kind": request.kind,
            "items": [
                {
                    "template": i.template.name,
                    "version": i.version.version,
                    "target": i.target_stage,
                }
                for i in request.items.select_related("template", "version")
            ],
        }
    return {
        "kind": request.kind,
        "template": request.template.name,
        "version": request.version.version,
        "target_stage": request.target_stage,
        "content_sha256": request.content_sha256,
    }


def _notify(request: PromotionRequest, event: str) -> None:
    from registry_ui.web import notify

    request_id = request.pk
    transaction.on_commit(lambda: notify.request_event(request_id, event))


def _version(template_name: str, version: str) -> TemplateVersion:
    try:
        return TemplateVersion.objects.select_related("template").get(
            template__name=template_name, version=version
        )
    except TemplateVersion.DoesNotExist:
        raise PolicyError(
            f"{template_name} {version}: no such version in the mirror (sync the registry if "
            "it was registered outside the dashboard)"
        ) from None


def gate_for(version: TemplateVersion) -> GateResult:
    """The metric gate of a version going to production (no data until experiments exist)."""
    observation = None
    try:
        from registry_ui.web import experiments  # the experiments feature, once it lands
    except ImportError:
        experiments = None
    if experiments is not None:
        observation = experiments.observation_for(version)
    return evaluate_gate(version.metadata, observation, min_samples=settings.GATE_MIN_SAMPLES)


# -- filing ----------------------------------------------------------------------------------


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
    require(user, "request_promotion", "requesting a promotion")
    justification = _text(justification, "a justification", required=True)
    try:
        stage = ModelStage.parse(target)
    except ValueError as error:
        raise PolicyError(str(error)) from None
    with audit.atomic():
        row = _version(template_name, version)
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
    require(user, "rollback_production", "rolling production back")
    reason = _text(reason, "a reason", required=True)
    with audit.atomic():
        row = _version(template_name, version)
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
        with audit.atomic():
            request = PromotionRequest.objects.create(
                kind=kind,
                template=template,
                version=row,
                content_sha256=row.content_sha256,
                from_stage=row.stage,
                target_stage=target.value,
                basis_epoch=template.stage_epoch,
                requester=user,
                version_authors=_authors_field([row]),
                justification=justification,
                required_approvals=required,
                gate={"status": gate.status, "detail": gate.detail} if gate else {},
                checks=checks,
            )
    except IntegrityError:
        raise PolicyError(f"{label}: a request to move it to {target} is open already") from None
    _audit(
        user.get_username(),
        "request.filed" if kind == Kind.PROMOTE else "rollback.filed",
        request,
        {**_describe(request), "justification": justification, "required": required},
        source,
    )
    _notify(request, "filed")
    return request


# -- reviewing -------------------------------------------------------------------------------


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
    require(user, "approve_promotion", "approving a request")
    comment = _text(comment, "the comment", required=False)
    gate_reason = _text(gate_reason, "the reason for approving despite the gate", required=False)
    checks_reason = _text(checks_reason, "the reason for overriding the checks", required=False)
    refresh_staleness(request_id)
    with audit.atomic():
        request = _locked(request_id)
        username = user.get_username()
        if request.approvals.filter(reviewer=user).exists():
            return request  # a retried click: already approved
        _check_open(request, "approved")
        check_reviewer(
            username,
            requester=request.requester.get_username(),
            authors=_authors(request.version_authors),
            label=request.label,
        )
        if request.gate.get("status") == "fail" and not gate_reason:
            raise PolicyError(
                f"{request.label}: the metric gate fails ({request.gate.get('detail')}): "
                "approving anyway needs a written reason"
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
        count = valid_approvals(request)
        _audit(
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
            _notify(request, "approved")
        return request


def reject(
    user, request_id: int, *, comment: str, source: str = AuditEvent.Source.DASHBOARD
) -> PromotionRequest:
    require(user, "approve_promotion", "rejecting a request")
    comment = _text(comment, "a comment saying why it is rejected", required=True)
    with audit.atomic():
        request = _locked(request_id)
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
        _close(request, Status.REJECTED, comment, actor=user.get_username(), source=source)
        return request


def withdraw(
    user, request_id: int, *, source: str = AuditEvent.Source.DASHBOARD
) -> PromotionRequest:
    with audit.atomic():
        request = _locked(request_id)
        if request.requester_id != user.pk and not user.is_superuser:
            raise PermissionDenied("only the requester (or an administrator) can withdraw it")
        if request.status == Status.WITHDRAWN:
            return request
        _check_open(request, "withdrawn")
        _close(request, Status.WITHDRAWN, "withdrawn", actor=user.get_username(), source=source)
        return request


def add_comment(
    user, request_id: int, *, text: str, source: str = AuditEvent.Source.DASHBOARD
) -> RequestComment:
    if not (user.has_perm("registry_web.comment_request")):
        require(user, "comment_request", "commenting")
    text = _text(text, "the comment", required=True)
    with audit.atomic():
        request = PromotionRequest.objects.get(pk=request_id)
        comment = RequestComment.objects.create(
            request=request, author=user, author_username=user.get_username(), text=text
        )
        _audit(user.get_username(), "request.commented", request, {"comment": text}, source)
    return comment


def _locked(request_id: int) -> PromotionRequest:
    try:
        return (
            PromotionRequest.objects.select_for_update(of=("self",))
            .select_related("template", "version", "requester")
            .get(pk=request_id)
        )
    except PromotionRequest.DoesNotExist:
        raise PolicyError(f"request #{request_id} does not exist") from None


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


def valid_approvals(request: PromotionRequest) -> int:
    """Approvals by reviewers who still hold the role (an approval of a stale request
    never counts: the request is closed)."""
    return sum(
        1
        for approval in request.approvals.select_related("reviewer")
        if approval.reviewer.is_active
        and approval.reviewer.has_perm("registry_web.approve_promotion")
    )


def _close(request, status, outcome, *, actor, source, items_too=True) -> None:
    request.status = status
    request.outcome = outcome[:MAX_TEXT]
    request.decided_at = request.decided_at or timezone.now()
    if status in (Status.DONE, Status.FAILED):
        request.finished_at = timezone.now()
    request.save(update_fields=["status", "outcome", "decided_at", "finished_at"])
    if items_too and request.kind == Kind.RELEASE:
        request.items.filter(status__in=PromotionRequest.ACTIVE).update(
            status=status, outcome=outcome[:MAX_TEXT], decided_at=request.decided_at
        )
    _audit(actor, f"request.{status}", request, {"outcome": outcome}, source)
    _notify(request, status)


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
    _audit(
        actor,
        "request.approved_for_execution",
        request,
        {"operation": str(operation.id), "approvals": valid_approvals(request)},
        source,
    )
    _notify(request, "executing")
    from registry_ui.web.operations import send_after_commit

    send_after_commit([operation.id])
    return operation


# -- staleness -------------------------------------------------------------------------------


def mark_stale(template: Template, *, actor: str = "registry_ui", source: str) -> int:
    """Open requests on a template whose stages moved stop counting (the mirror calls this
    inside its transaction, after bumping the template's stage epoch)."""
    stale = list(
        PromotionRequest.objects.select_for_update(of=("self",))
        .filter(template=template, status=Status.OPEN, basis_epoch__lt=template.stage_epoch)
        .select_related("template", "version")
    )
    for request in stale:
        reason = (
            f"{request.label}: the template's stages changed since it was filed (another "
            "version was promoted or this one was moved); file a new request"
        )
        target = request.release if request.release_id else request
        if target.status == Status.OPEN:
            _close(target, Status.STALE, reason, actor=actor, source=source)
    return len(stale)


def refresh_staleness(request_id: int) -> None:
    """Close a request as stale if the mirror says its version changed under it."""
    with audit.atomic():
        request = _locked(request_id)
        if request.status != Status.OPEN or request.kind == Kind.RELEASE:
            return
        reason = stale_reason(_facts(request), _current(request))
        if reason:
            target = request.release if request.release_id else request
            _close(target, Status.STALE, reason, actor="registry_ui", source="dashboard")


def _facts(request: PromotionRequest) -> RequestFacts:
    return RequestFacts(
        label=request.label,
        kind=request.kind,
        target=ModelStage(request.target_stage),
        from_stage=ModelStage(request.from_stage),
        content_sha256=request.content_sha256,
        basis_epoch=request.basis_epoch,
    )


def _current(request: PromotionRequest) -> CurrentFacts:
    row = TemplateVersion.objects.filter(pk=request.version_id).first()
    epoch = Template.objects.values_list("stage_epoch", flat=True).get(pk=request.template_id)
    return CurrentFacts(
        stage=ModelStage(row.stage) if row else None,
        content_sha256=row.content_sha256 if row else "",
        epoch=epoch,
    )


# -- carrying out (called by the worker through operations._execute) -------------------------


def check_before_write(request: PromotionRequest, *, approvals: int | None = None) -> None:
    """Mirror the template from MLflow, then check the policy once more; raises PolicyError."""
    from registry_ui.prompt_model import get_registry
    from registry_ui.web.mirror import mirror_template

    name = request.template.name
    mirror_template(
        name, get_registry().gateway.list_versions(name), source=AuditEvent.Source.EXTERNAL
    )
    parent = request.release or request
    count = valid_approvals(parent) if approvals is None else approvals
    problems = execution_problems(
        _facts(request), _current(request), approvals=count, required=parent.required_approvals
    )
    if not problems:  # the version is the one approved: run its test cases, the last gate
        actor = request.requester.get_username()
        problems = version_checks.promotion_problems(request, actor=actor)
    if problems:
        raise PolicyError("; ".join(problems))


def operation_finished(operation: Operation, *, status: str, error: str = "") -> None:
    """Record a request's outcome when its operation ends (inside finish's transaction)."""
    request = PromotionRequest.objects.select_for_update(of=("self",)).get(pk=operation.request_id)
    if request.status != Status.EXECUTING:
        return
    approved_by = list(request.approvals.values_list("reviewer_username", flat=True))
    if request.release_id:
        approved_by = list(request.release.approvals.values_list("reviewer_username", flat=True))
    if status == Operation.Status.SUCCEEDED:
        request.status = Status.DONE
        request.outcome = "carried out"
    else:
        request.status = Status.FAILED
        request.outcome = (error or "failed")[:MAX_TEXT]
    request.finished_at = timezone.now()
    request.save(update_fields=["status", "outcome", "finished_at"])
    after = {**_describe(request), "outcome": request.outcome}
    if status == Operation.Status.SUCCEEDED and request.kind != Kind.RELEASE:
        after.update(
            requested_by=request.requester.get_username(),
            approved_by=approved_by,
            justification=request.justification,
        )
    noun = "release" if request.kind == Kind.RELEASE else "request"
    _audit(
        operation.batch.actor,
        f"{noun}.executed" if request.status == Status.DONE else f"{noun}.failed",
        request,
        after,
        AuditEvent.Source.WORKER,
    )
    if not request.release_id:
        _notify(request, request.status)


# -- releases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseLine:
    template: str
    version: str
    target: str


def dry_run(lines: Sequence[ReleaseLine]) -> list[ItemPlan]:
    """What a release would change for each template and what stops each item."""
    items = []
    for line in lines:
        try:
            target = ModelStage.parse(line.target)
        except ValueError as error:
            raise PolicyError(f"{line.template} {line.version}: {error}") from None
        items.append(ReleaseItem(line.template, line.version, target))
    names = {item.name for item in items}
    states: dict[str, dict[str, VersionState]] = {}
    for row in TemplateVersion.objects.filter(template__name__in=names).select_related("template"):
        states.setdefault(row.template.name, {})[row.version] = VersionState(
            ModelStage(row.stage), row.content_sha256, row.metadata
        )
    open_requests = frozenset(
        PromotionRequest.objects.filter(
            template__name__in=names, status__in=PromotionRequest.ACTIVE
        ).values_list("template__name", "version__version", "target_stage")
    )
    return plan_release(items, states, open_requests=open_requests, checks=_release_checks)


def _release_checks(item: ReleaseItem, state: VersionState) -> list[str]:
    row = TemplateVersion.objects.get(template__name=item.name, version=item.version)
    checks = version_checks.snapshot(row, actor="registry_ui", store=False)
    found = [f"test cases: {checks['detail']}"] if checks["status"] == "fail" else []
    if item.target != ModelStage.PRODUCTION:
        return found
    gate = gate_for(row)
    return [*found, f"metric gate: {gate.detail}"] if gate.failing else found


def file_release(
    user,
    *,
    lines: Sequence[ReleaseLine],
    justification: str,
    source: str = AuditEvent.Source.DASHBOARD,
) -> PromotionRequest:
    """Request many moves as one release, approved once; refused if the dry run finds problems."""
    require(user, "request_promotion", "requesting a release")
    justification = _text(justification, "a justification", required=True)
    if not lines:
        raise PolicyError("a release needs at least one version")
    with audit.atomic():
        plans = dry_run(lines)
        problems = [p for plan in plans for p in plan.problems]
        if problems:
            raise PolicyError("the release cannot be requested: " + "; ".join(problems))
        policy = approval_policy()
        rows = [_version(p.item.name, p.item.version) for p in plans]
        templates = {
            t.pk: t
            for t in Template.objects.select_for_update().filter(
                pk__in=[r.template_id for r in rows]
            )
        }
        release = PromotionRequest.objects.create(
            kind=Kind.RELEASE,
            requester=user,
            justification=justification,
            version_authors=_authors_field(rows),
            required_approvals=max(policy.required("promote", p.item.target) for p in plans),
            gate={},
        )
        try:
            with audit.atomic():
                for plan, row in zip(plans, rows, strict=True):
                    template = templates[row.template_id]
                    gate = gate_for(row) if plan.item.target == ModelStage.PRODUCTION else None
                    PromotionRequest.objects.create(
                        kind=Kind.PROMOTE,
                        release=release,
                        template=template,
                        version=row,
                        content_sha256=row.content_sha256,
                        from_stage=row.stage,
                        target_stage=plan.item.target.value,
                        basis_epoch=template.stage_epoch,
                        requester=user,
                        version_authors=_authors_field([row]),
                        justification=justification,
                        required_approvals=release.required_approvals,
                        gate={"status": gate.status, "detail": gate.detail} if gate else {},
                        checks=version_checks.snapshot(row, actor=user.get_username()),
                    )
        except IntegrityError:
            raise PolicyError("a version in the release has an open request already") from None
        _audit(
            user.get_username(),
            "release.filed",
            release,
            {**_describe(release), "justification": justification},
            source,
        )
        _notify(release, "filed")
        return release


class ReleaseFailed(PolicyError):
    """A release item failed; the templates already moved were moved back."""


# How long a release waits for another operation on one of its templates to finish.
RELEASE_SLOT_WAIT_SECONDS = 30.0


def execute_release(operation: Operation) -> dict:
    """Carry a release out template by template; on a failure move the moved ones back.

    Progress is kept in the release's report, so a re-run after a crash resumes (or
    finishes moving back) instead of starting over.
    """
    from registry_ui.prompt_model import get_registry
    from registry_ui.web.mirror import mirror_template

    registry = get_registry()
    release = PromotionRequest.objects.get(pk=operation.request_id)
    report = release.report or {"phase": "applying", "items": {}}
    items = list(release.items.select_related("template", "version").order_by("id"))
    approvals = valid_approvals(release)
    failure = report.get("failure")
    if report["phase"] == "applying":
        for item in items:
            key = str(item.pk)
            if report["items"].get(key, {}).get("status") == "moved":
                continue
            name = item.template.name
            try:
                slot = _claim_slot(operation, item)
                try:
                    records = registry.gateway.list_versions(name)
                    before = {r.version: r.stage.value for r in records}
                    report["items"][key] = {
                        "template": name,
                        "version": item.version.version,
                        "target": item.target_stage,
                        "status": "moving",
                        "before": before,
                    }
                    _save_report(release, report)
                    check_before_write(item, approvals=approvals)
                    registry.promote(name, item.version.version, item.target_stage)
                    mirror_template(
                        name,
                        registry.gateway.list_versions(name),
                        source=AuditEvent.Source.WORKER,
                        actor=operation.batch.actor,
                    )
                except BaseException:
                    _release_slot(slot, Operation.Status.FAILED)
                    raise
                _release_slot(slot, Operation.Status.SUCCEEDED)
                report["items"][key]["status"] = "moved"
                _save_report(release, report)
            except Exception as error:  # any failure moves the release back
                failure = f"{name} {item.version.version}: {error}"
                report["items"].setdefault(key, {"template": name})["status"] = "failed"
                report["items"][key]["error"] = str(error)
                report["phase"] = "moving back"
                report["failure"] = failure
                _save_report(release, report)
                break
    if report["phase"] == "moving back":
        for entry in reversed(list(report["items"].values())):
            if "before" not in entry or entry["status"] == "moved back":
                continue  # never touched, or already moved back
            name = entry["template"]
            registry.restore_stages(name, entry["before"])  # RegistryUnavailable: retried
            mirror_template(
                name,
                registry.gateway.list_versions(name),
                source=AuditEvent.Source.WORKER,
                actor=operation.batch.actor,
            )
            entry["status"] = "moved back" if entry["status"] != "failed" else "failed, moved back"
            _save_report(release, report)
        report["phase"] = "moved back"
        _save_report(release, report)
    if report["phase"] == "moved back":
        _finish_items(release, items, report)
        raise ReleaseFailed(
            f"release #{release.pk} failed and was moved back: {failure}; "
            + ", ".join(f"{e['template']}: {e['status']}" for e in report["items"].values())
        )
    report["phase"] = "done"
    _save_report(release, report)
    _finish_items(release, items, report)
    return {"release": release.pk, "items": len(items)}


def _finish_items(release, items, report) -> None:
    with audit.atomic():
        for item in items:
            entry = report["items"].get(str(item.pk), {"status": "not attempted"})
            status = Status.DONE if entry["status"] == "moved" else Status.FAILED
            PromotionRequest.objects.filter(pk=item.pk, status=Status.EXECUTING).update(
                status=status,
                outcome=entry.get("error") or entry["status"],
                finished_at=timezone.now(),
            )
            if status == Status.DONE:
                _audit(
                    release.requester.get_username(),
                    "request.executed",
                    item,
                    {
                        **_describe(item),
                        "kind": "release",
                        "release": release.pk,
                        "requested_by": release.requester.get_username(),
                        "approved_by": list(
                            release.approvals.values_list("reviewer_username", flat=True)
                        ),
                        "justification": release.justification,
                    },
                    AuditEvent.Source.WORKER,
                )


def _save_report(release: PromotionRequest, report: dict) -> None:
    PromotionRequest.objects.filter(pk=release.pk).update(report=report)
    release.report = report


def _claim_slot(operation: Operation, item: PromotionRequest) -> str:
    """Hold the template's one running-operation slot while the release moves it."""
    deadline = time.monotonic() + RELEASE_SLOT_WAIT_SECONDS
    while True:
        try:
            with transaction.atomic():
                slot, created = Operation.objects.get_or_create(
                    request=item,
                    defaults={
                        "id": uuid.uuid4(),
                        "batch": operation.batch,
                        "kind": Operation.Kind.TRANSITION,
                        "template_name": item.template.name,
                        "version": item.version.version,
                        "target_stage": item.target_stage,
                        "status": Operation.Status.RUNNING,
                        "attempts": 1,
                        "started_at": timezone.now(),
                        "position": 1 + item.pk,
                    },
                )
                if not created:
                    Operation.objects.filter(pk=slot.pk).update(status=Operation.Status.RUNNING)
            return str(slot.pk)
        except IntegrityError:
            if time.monotonic() > deadline:
                raise PolicyError(
                    f"{item.template.name}: another operation kept the template busy for "
                    f"{RELEASE_SLOT_WAIT_SECONDS:g} s"
                ) from None
            time.sleep(0.5)


def _release_slot(operation_id: str, status: str) -> None:
    Operation.objects.filter(pk=operation_id, status=Operation.Status.RUNNING).update(
        status=status, finished_at=timezone.now()
    )


def waiting_for_me(user, requests=None):
    """Requests that need this user's review: open, not filed or written by them, not yet
    approved by them (the inbox's "waiting for me" and the header's count)."""
    if requests is None:
        requests = PromotionRequest.objects.all()
    if not user.is_authenticated or not user.has_perm("registry_web.approve_promotion"):
        return requests.none()
    return (
        requests.filter(status=Status.OPEN, release__isnull=True)
        .exclude(requester=user)
        .exclude(version_authors__contains=f",{user.get_username()},")
        .exclude(approvals__reviewer=user)
    )


def waiting_for(user) -> int:
    """In-app count: requests that need this user's review."""
    return waiting_for_me(user).count()
