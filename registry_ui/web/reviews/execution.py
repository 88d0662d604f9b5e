"""Carrying out approved requests (called by the operations worker).

The worker mirrors the template from MLflow and checks the policy once more before it
writes; a release is carried out template by template and moved back whole on a failure."""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.errors import ContentMismatchError, RegistryUnavailableError
from registry_ui.core.intents import Intent, OutsideChangeError
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.policy import PolicyError, execution_problems
from registry_ui.core.records import canonical_versions, content_hash
from registry_ui.core.redact import redact
from registry_ui.prompt_model import get_registry
from registry_ui.web.audit import trail
from registry_ui.web.checks import services as version_checks
from registry_ui.web.models import AuditEvent, Operation, PromotionRequest, TemplateFlag
from registry_ui.web.prompts.flags import raise_flag
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews.staleness import current_facts, request_facts
from registry_ui.web.reviews.trail import announce, audit_request, describe

Status = PromotionRequest.Status
Kind = PromotionRequest.Kind


class ChangedInMlflow(PolicyError):
    """The template's stages moved in MLflow after approval, outside registry_ui."""


def check_before_write(request: PromotionRequest, *, approvals: int | None = None) -> None:
    """Mirror the template from MLflow, then check the policy once more; raises PolicyError.

    The version's text in MLflow must still be the approved one: its content hash is
    recomputed from the tags and compared with the hash the request was filed with
    (ContentMismatchError otherwise: edited in MLflow after review, never served by us).
    """
    name = request.template.name
    records = get_registry().gateway.list_versions(name)
    events = mirror_template(name, records, source=AuditEvent.Source.EXTERNAL)
    moved = [e for e in events if e.action == "version.stage_changed"]
    if moved:
        raise ChangedInMlflow(
            f"{name}: its stages were changed in MLflow, outside registry_ui, after this "
            "request was approved ("
            + ", ".join(f"{e.object_id} {e.before['stage']} -> {e.after['stage']}" for e in moved)
            + "). Nothing was overwritten; check the change, then file a new request"
        )
    version = request.version.version
    record = next((r for r in canonical_versions(records) if r.version == version), None)
    if record is not None and (
        content_hash(record.template, record.metadata, record.extra) != request.content_sha256
        or record.content_sha256 != request.content_sha256
    ):
        raise ContentMismatchError(
            f"{name} {version}: its text or metadata in MLflow (MLflow version "
            f"{record.mlflow_version}) is not the content this request was filed and "
            "approved for: it was edited in MLflow after review. Nothing was moved"
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


def must_finish(operation: Operation) -> bool:
    """Whether a failing operation must keep retrying rather than give up: its stage move
    may be half written (a recorded plan, or a release under way), and only finishing it
    (or moving the release back) leaves MLflow in step."""
    if operation.intent:
        return True
    if operation.kind != Operation.Kind.RELEASE:
        return False
    report = (
        PromotionRequest.objects.filter(pk=operation.request_id)
        .values_list("report", flat=True)
        .first()
    )
    return bool(report and (report.get("items") or report.get("phase") == "moving back"))


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
        request.outcome = redact(error or "failed")[:MAX_TEXT]
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
    if request.status == Status.DONE:
        _publish_after(request)


def _publish_after(request: PromotionRequest) -> None:
    """The moved templates chosen for publishing as native prompts are brought in step by a
    task after this transaction commits; it never fails or undoes the move."""
    from registry_ui.web.prompts.native import publishing_chosen
    from registry_ui.web.prompts.tasks import publish_native_template

    moved = (
        [request]
        if request.template_id
        else list(request.items.select_related("template", "version"))
    )
    for each in moved:
        if each.template_id and publishing_chosen(each.template.name, each.version.metadata):
            name = each.template.name
            transaction.on_commit(lambda name=name: publish_native_template.delay(name))


class ReleaseFailed(PolicyError):
    """A release item failed; the templates already moved were moved back."""


# How long a release waits for another operation on one of its templates to finish.
RELEASE_SLOT_WAIT_SECONDS = 30.0


def execute_release(operation: Operation) -> dict:
    """Carry a release out template by template; on a failure move the moved ones back.

    Progress is kept in the release's report, each item's plan (core.intents) recorded
    there before its first MLflow write, so a re-run after a crash resumes the same moves
    (or finishes moving back) instead of starting over. MLflow trouble is ridden out: the
    operation is retried with backoff until RELEASE_RETRY_BUDGET_SECONDS have passed
    since the first attempt; only then is the release moved back.
    """
    registry = get_registry()
    release = PromotionRequest.objects.get(pk=operation.request_id)
    report = release.report or {"phase": "applying", "items": {}}
    report.setdefault("started", time.time())
    items = list(release.items.select_related("template", "version").order_by("id"))
    approvals = release.valid_approvals()
    if report["phase"] == "applying":
        for item in items:
            key = str(item.pk)
            if report["items"].get(key, {}).get("status") == "moved":
                continue
            name = item.template.name
            try:
                _apply_item(operation, release, report, item, approvals, registry)
            except RegistryUnavailableError as error:
                if time.time() - report["started"] < settings.RELEASE_RETRY_BUDGET_SECONDS:
                    _save_report(release, report)
                    raise  # retried with backoff; the item's plan is kept
                _fail(release, report, key, name, f"MLflow did not answer in time: {error}")
                break
            except Exception as error:  # any other failure moves the release back
                _fail(release, report, key, name, f"{name} {item.version.version}: {error}")
                break
    if report["phase"] == "moving back":
        for entry in reversed(list(report["items"].values())):
            if "intent" not in entry or entry["status"].endswith(("moved back", "left alone")):
                continue  # never written, or already moved back
            _move_back(operation, release, report, entry, registry)
        report["phase"] = "moved back"
        _save_report(release, report)
    if report["phase"] == "moved back":
        _finish_items(release, items, report)
        raise ReleaseFailed(
            f"release #{release.pk} failed and was moved back: {report.get('failure')}; "
            + ", ".join(f"{e['template']}: {e['status']}" for e in report["items"].values())
        )
    report["phase"] = "done"
    _save_report(release, report)
    _finish_items(release, items, report)
    return {"release": release.pk, "items": len(items)}


def _apply_item(operation, release, report, item, approvals, registry) -> None:
    """Move one item: check and plan it (first time), record the plan, carry it out."""
    key, name = str(item.pk), item.template.name
    slot = _claim_slot(operation, item)
    try:
        entry = report["items"].get(key)
        if not entry or "intent" not in entry:
            check_before_write(item, approvals=approvals)
            intent = registry.plan_promotion(name, item.version.version, item.target_stage)
            report["items"][key] = {
                "template": name,
                "version": item.version.version,
                "target": item.target_stage,
                "status": "moving",
                "intent": intent.to_json(),
            }
            _save_report(release, report)  # the plan, before the first write
            # Also on the slot, where the mirror looks to tell our own moves from others'.
            Operation.objects.filter(pk=slot).update(intent=intent.to_json())
        intent = Intent.from_json(report["items"][key]["intent"])
        registry.apply_intent(intent)
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


def _fail(release, report, key, name, failure: str) -> None:
    entry = report["items"].setdefault(key, {"template": name})
    entry["status"] = "failed"
    failure = redact(failure)  # MLflow's error texts may carry its URL with a password
    entry["error"] = failure
    report["phase"] = "moving back"
    report["failure"] = failure
    _save_report(release, report)


def _move_back(operation, release, report, entry, registry) -> None:
    """Undo what this release wrote to one template; an alias someone else has moved since
    is left as they set it (and the template flagged). MLflow trouble: retried."""
    name = entry["template"]
    intent = Intent.from_json(entry["intent"])
    undo, foreign = intent.undo(registry.gateway.alias_map(name))
    try:
        registry.apply_intent(undo)
    except OutsideChangeError as error:
        foreign = [error]
    mirror_template(
        name,
        registry.gateway.list_versions(name),
        source=AuditEvent.Source.WORKER,
        actor=operation.batch.actor,
    )
    if foreign:
        note = (
            f"{name}: an alias was moved outside registry_ui during the release; it was "
            "left as it is, check it in MLflow"
        )
        raise_flag(name, TemplateFlag.Kind.OUTSIDE_CHANGE, note, version=entry.get("version", ""))
        entry["status"] = f"{entry['status']}, outside change left alone"
    else:
        entry["status"] = "moved back" if entry["status"] != "failed" else "failed, moved back"
    _save_report(release, report)


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
