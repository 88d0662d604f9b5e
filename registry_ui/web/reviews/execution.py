"""Carrying out approved requests (called by the operations worker).

The worker mirrors the template from MLflow and checks the policy once more before it
writes; a release is carried out template by template and moved back whole on a failure."""

from __future__ import annotations

import time
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.policy import PolicyError, execution_problems
from registry_ui.prompt_model import get_registry
from registry_ui.web.audit import trail
from registry_ui.web.checks import services as version_checks
from registry_ui.web.models import AuditEvent, Operation, PromotionRequest
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews.staleness import current_facts, request_facts
from registry_ui.web.reviews.trail import announce, audit_request, describe

Status = PromotionRequest.Status
Kind = PromotionRequest.Kind


def check_before_write(request: PromotionRequest, *, approvals: int | None = None) -> None:
    """Mirror the template from MLflow, then check the policy once more; raises PolicyError."""
    name = request.template.name
    mirror_template(
        name, get_registry().gateway.list_versions(name), source=AuditEvent.Source.EXTERNAL
    )
    parent = request.release or request
    count = parent.valid_approvals() if approvals is None else approvals
    problems = execution_problems(
        request_facts(request),
        current_facts(request),
        approvals=count,
        required=parent.required_approvals,
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
    after = {**describe(request), "outcome": request.outcome}
    if status == Operation.Status.SUCCEEDED and request.kind != Kind.RELEASE:
        after.update(
            requested_by=request.requester.get_username(),
            approved_by=approved_by,
            justification=request.justification,
        )
    noun = "release" if request.kind == Kind.RELEASE else "request"
    audit_request(
        operation.batch.actor,
        f"{noun}.executed" if request.status == Status.DONE else f"{noun}.failed",
        request,
        after,
        AuditEvent.Source.WORKER,
    )
    if not request.release_id:
        announce(request, request.status)


class ReleaseFailed(PolicyError):
    """A release item failed; the templates already moved were moved back."""


# How long a release waits for another operation on one of its templates to finish.
RELEASE_SLOT_WAIT_SECONDS = 30.0


def execute_release(operation: Operation) -> dict:
    """Carry a release out template by template; on a failure move the moved ones back.

    Progress is kept in the release's report, so a re-run after a crash resumes (or
    finishes moving back) instead of starting over.
    """
    registry = get_registry()
    release = PromotionRequest.objects.get(pk=operation.request_id)
    report = release.report or {"phase": "applying", "items": {}}
    items = list(release.items.select_related("template", "version").order_by("id"))
    approvals = release.valid_approvals()
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
    with trail.atomic():
        for item in items:
            entry = report["items"].get(str(item.pk), {"status": "not attempted"})
            status = Status.DONE if entry["status"] == "moved" else Status.FAILED
            PromotionRequest.objects.filter(pk=item.pk, status=Status.EXECUTING).update(
                status=status,
                outcome=entry.get("error") or entry["status"],
                finished_at=timezone.now(),
            )
            if status == Status.DONE:
                audit_request(
                    release.requester.get_username(),
                    "request.executed",
                    item,
                    {
                        **describe(item),
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
