"""Keep Django's mirror of the registry in step with MLflow, auditing what changed."""

from __future__ import annotations

from django.utils import timezone

from registry_ui.core.names import to_registered_model_name
from registry_ui.core.records import VersionRecord
from registry_ui.core.stages import ModelStage
from registry_ui.core.template import parse_template
from registry_ui.prompt_model import get_registry
from registry_ui.web.audit import trail
from registry_ui.web.checks.services import record_registration_runs
from registry_ui.web.models import AuditEvent, Stage, Template, TemplateVersion
from registry_ui.web.prompts.signals import stages_moved

_HELD_STAGES = (Stage.STAGING, Stage.PRODUCTION)


# Up to this many records, the mirror reads only the rows they name (an IN list).
_FEW_RECORDS = 100


def mirror_template(
    name: str, records: list[VersionRecord], *, source: str, actor: str = "mlflow"
) -> list[AuditEvent]:
    """Make the mirror of one template match MLflow's versions; audit every difference.

    A version or stage change seen with source "external" was made outside the dashboard;
    a production change of that kind flags the template for reviewers.
    """
    with trail.atomic():  # the chain lock before the template's row lock
        return _mirror_template(name, records, source=source, actor=actor)


def _mirror_template(name, records, *, source, actor):
    template, _ = Template.objects.select_for_update().get_or_create(
        name=name, defaults={"registered_model_name": to_registered_model_name(name)}
    )
    rows = template.versions.all()
    if len(records) <= _FEW_RECORDS:
        # Only rows these records name are compared or changed: a worker mirroring the
        # versions it just created does not read the template's whole history.
        rows = rows.filter(version__in=[record.version for record in records])
    existing = {v.version: v for v in rows}
    events: list[AuditEvent] = []
    new_rows: list[TemplateVersion] = []
    moves: list[tuple[TemplateVersion, str]] = []
    for record in records:
        row = existing.get(record.version)
        if row is None:
            row = _new_row(template, record)
            new_rows.append(row)
            events.append(_event(actor, "version.registered", row, None, _state(row), source))
        elif row.stage != record.stage.value:
            moves.append((row, record.stage.value))
    # Rows leave staging and production before any row enters them: the partial unique
    # constraints allow one holder at every moment, even inside this transaction.
    # Rows swapping staging and production (a release moved back) are parked first.
    leaving = [move for move in moves if move[1] not in _HELD_STAGES]
    entering = [move for move in moves if move[1] in _HELD_STAGES]
    for row, stage in leaving:
        events.append(_move(template, row, stage, actor, source))
    swapping = [row for row, _ in entering if row.stage in _HELD_STAGES]
    TemplateVersion.objects.filter(pk__in=[row.pk for row in swapping]).update(stage=Stage.DEV)
    TemplateVersion.objects.bulk_create(new_rows)
    record_registration_runs(new_rows, actor=actor)
    for row, stage in entering:
        events.append(_move(template, row, stage, actor, source))
    template.synced_at = timezone.now()
    if moves:
        template.stage_epoch += 1  # open requests filed before this move are stale
    template.save(update_fields=["synced_at", "external_production_change", "stage_epoch"])
    trail.record_many(events)
    if moves:
        stages_moved.send(sender=Template, template=template, actor=actor, source=source)
    return events


def _move(template: Template, row: TemplateVersion, stage: str, actor: str, source: str):
    before = row.stage
    row.stage = stage
    row.was_production = row.was_production or stage == Stage.PRODUCTION
    row.save(update_fields=["stage", "was_production"])
    if source == AuditEvent.Source.EXTERNAL and Stage.PRODUCTION in (before, stage):
        template.external_production_change = True
    return _event(actor, "version.stage_changed", row, {"stage": before}, {"stage": stage}, source)


def _new_row(template: Template, record: VersionRecord) -> TemplateVersion:
    major, minor, patch = (int(part) for part in record.version.split("."))
    return TemplateVersion(
        template=template,
        version=record.version,
        major=major,
        minor=minor,
        patch=patch,
        stage=record.stage.value,
        text=record.template,
        variables=list(parse_template(record.template).variables),
        metadata=record.metadata,
        author=str(record.metadata.get("author", ""))[:150],
        registered_by=(record.registered_by or "")[:150],
        content_sha256=record.content_sha256,
        mlflow_version=record.mlflow_version,
        run_id=record.run_id or "",
        created_at=record.created_at,
        was_production=record.stage == ModelStage.PRODUCTION,
    )


def _state(row: TemplateVersion) -> dict:
    return {"version": row.version, "stage": row.stage, "mlflow_version": row.mlflow_version}


def _event(actor, action, row, before, after, source) -> AuditEvent:
    return AuditEvent(
        actor=actor,
        action=action,
        object_type="template_version",
        object_id=f"{row.template.name}@{row.version}",
        before=before,
        after=after,
        source=source,
    )


def _mirror_new_templates(by_name: dict[str, list[VersionRecord]]) -> int:
    """Templates the mirror has never seen, written in bulk (a first sync writes thousands)."""
    if not by_name:
        return 0
    with trail.atomic():
        return _write_new_templates(by_name)


def _write_new_templates(by_name: dict[str, list[VersionRecord]]) -> int:
    Template.objects.bulk_create(
        [Template(name=n, registered_model_name=to_registered_model_name(n)) for n in by_name],
        ignore_conflicts=True,  # a worker may have mirrored one meanwhile: keep its row
    )
    templates = Template.objects.filter(name__in=list(by_name)).in_bulk(field_name="name")
    taken = set(
        TemplateVersion.objects.filter(template__in=templates.values()).values_list(
            "template__name", "version"
        )
    )
    rows = [
        _new_row(templates[name], record)
        for name, records in by_name.items()
        for record in records
        if (name, record.version) not in taken
    ]
    TemplateVersion.objects.bulk_create(rows, batch_size=1000)
    record_registration_runs(rows, actor="mlflow")
    events = [
        _event("mlflow", "version.registered", row, None, _state(row), AuditEvent.Source.EXTERNAL)
        for row in rows
    ]
    trail.record_many(events)
    return len(events)


# Templates mirrored per transaction in a full sync: few commits (each one is an fsync on
# SQLite) without holding row locks on every template for the whole sync.
_SYNC_CHUNK = 100


def sync_registry() -> dict[str, int]:
    """Mirror every template in MLflow; differences not made here are audited as external.

    Reads all versions with paged searches and compares sets of version numbers per
    template, so it does not depend on page offsets staying still while it reads. Only
    templates that differ from the mirror are written.
    """
    gateway = get_registry().gateway
    calls_before = gateway.calls
    by_name = gateway.all_versions()
    mirrored: dict[str, dict[str, str]] = {}
    for name, version, stage in TemplateVersion.objects.values_list(
        "template__name", "version", "stage"
    ):
        mirrored.setdefault(name, {})[version] = stage
    changed = [
        name
        for name, records in sorted(by_name.items())
        if {r.version: r.stage.value for r in records} != mirrored.get(name)
    ]
    new = [name for name in changed if name not in mirrored]
    events = _mirror_new_templates({name: by_name[name] for name in new})
    changed = [name for name in changed if name in mirrored]
    for start in range(0, len(changed), _SYNC_CHUNK):
        with trail.atomic():
            for name in changed[start : start + _SYNC_CHUNK]:
                events += len(
                    mirror_template(name, by_name[name], source=AuditEvent.Source.EXTERNAL)
                )
    Template.objects.filter(name__in=list(by_name)).update(synced_at=timezone.now())
    return {
        "templates": len(by_name),
        "versions": sum(len(records) for records in by_name.values()),
        "changed_templates": len(changed),
        "changes": events,
        "mlflow_calls": gateway.calls - calls_before,
    }
