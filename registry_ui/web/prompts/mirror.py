"""Keep Django's mirror of the registry in step with MLflow, auditing what changed."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from registry_ui.core.intents import MarksOutOfStep, marks_out_of_step
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.names import to_registered_model_name
from registry_ui.core.records import (
    EntryProblem,
    VersionRecord,
    canonical_versions,
    content_hash,
    duplicate_versions,
)
from registry_ui.core.stages import ModelStage
from registry_ui.core.template import parse_template
from registry_ui.prompt_model import get_registry
from registry_ui.web.audit import trail
from registry_ui.web.checks.services import record_registration_runs
from registry_ui.web.models import (
    AuditEvent,
    MlflowProblem,
    Operation,
    Stage,
    Template,
    TemplateFlag,
    TemplateVersion,
)
from registry_ui.web.prompts.authorship import bind_authors
from registry_ui.web.prompts.flags import raise_flag
from registry_ui.web.prompts.native import sync_native_changes, sync_native_prompts
from registry_ui.web.prompts.signals import stages_moved, versions_added

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
    duplicates = duplicate_versions(records)
    if duplicates:
        _flag_duplicates(name, duplicates)
        records = canonical_versions(records)
    rows = template.versions.all()
    if len(records) <= _FEW_RECORDS:
        # Only rows these records name are compared or changed: a worker mirroring the
        # versions it just created does not read the template's whole history.
        rows = rows.filter(version__in=[record.version for record in records])
    existing = {v.version: v for v in rows}
    events: list[AuditEvent] = []
    new_rows: list[TemplateVersion] = []
    moves: list[tuple[TemplateVersion, str]] = []
    filled: list[TemplateVersion] = []
    for record in records:
        row = existing.get(record.version)
        if row is None:
            row = _new_row(template, record)
            new_rows.append(row)
            events.append(_event(actor, "version.registered", row, None, _state(row), source))
        else:
            if record.extra and not row.extra:
                filled.extend(_fill_extra(row, record))
            if row.stage != record.stage.value:
                moves.append((row, record.stage.value))
    if filled:
        TemplateVersion.objects.bulk_update(filled, ["extra"])
    if moves and source == AuditEvent.Source.EXTERNAL:
        ours = _moved_by_us(name, [(row.mlflow_version, stage) for row, stage in moves])
        if ours is not None:  # a sync that came in the middle of one of our stage moves
            source, actor = AuditEvent.Source.WORKER, ours
    # Rows leave staging and production before any row enters them: the partial unique
    # constraints allow one holder at every moment, even inside this transaction.
    # Rows swapping staging and production (a release moved back) are parked first.
    leaving = [move for move in moves if move[1] not in _HELD_STAGES]
    entering = [move for move in moves if move[1] in _HELD_STAGES]
    for row, stage in leaving:
        events.append(_move(template, row, stage, actor, source))
    swapping = [row for row, _ in entering if row.stage in _HELD_STAGES]
    TemplateVersion.objects.filter(pk__in=[row.pk for row in swapping]).update(stage=Stage.DEV)
    bind_authors(new_rows)
    TemplateVersion.objects.bulk_create(new_rows)
    if new_rows:
        Template.objects.filter(pk=template.pk).note_changes()
        versions_added.send(sender=Template, name=name, rows=new_rows)
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
    held = [(row, stage) for row, stage in moves if stage in _HELD_STAGES]
    if source == AuditEvent.Source.EXTERNAL and held:
        shown = ", ".join(f"{row.version} to {stage}" for row, stage in held)
        raise_flag(
            name,
            TemplateFlag.Kind.OUTSIDE_CHANGE,
            f"{name}: stages were moved in MLflow outside registry_ui ({shown}), without "
            "review. Check the change; move it back or file a request for it",
            actor="mlflow",
            source=AuditEvent.Source.EXTERNAL,
        )
    return events


def _fill_extra(row: TemplateVersion, record: VersionRecord) -> list[TemplateVersion]:
    """A chat version mirrored before the mirror kept messages (migration 0016) gets them
    from MLflow, only if MLflow's content is exactly what was registered (its hash): what
    the checks and pages then read is the reviewed content, never an edit made outside."""
    if content_hash(record.template, record.metadata, record.extra) != row.content_sha256:
        return []
    row.extra = record.extra
    return [row]


# How far back a stage move of ours may explain what a sync sees: a running or retrying
# operation, or one finished moments ago whose own mirror has not landed yet.
_OUR_MOVES_WINDOW = timedelta(minutes=10)


def _moved_by_us(name: str, moves: list[tuple[str, str]]) -> str | None:
    """The actor of our stage move that explains every one of these (MLflow version,
    stage) moves, or None if any is unexplained (someone else's change)."""
    recent = timezone.now() - _OUR_MOVES_WINDOW
    for intent, actor in (
        Operation.objects.filter(template_name=name)
        .filter(Q(status__in=["pending", "running"]) | Q(finished_at__gte=recent))
        .exclude(intent={})
        .values_list("intent", "batch__actor")
    ):
        after = intent.get("stages_after", {})
        if all(after.get(number) == stage for number, stage in moves):
            return actor
    return None


def _flag_duplicates(name: str, duplicates: dict[str, list[VersionRecord]]) -> None:
    """A semantic version registered more than once: the lowest MLflow number is the one
    registry_ui reads and moves (core.records.canonical_versions); the others are reported
    once each, and loudly if one holds an alias (MLflow serves it by that alias)."""
    for version, extras in sorted(duplicates.items()):
        numbers = ", ".join(r.mlflow_version for r in extras)
        held = sorted({alias for r in extras for alias in r.aliases})
        message = (
            f"{name} {version} is registered more than once in MLflow: registry_ui uses the "
            f"first registration and ignores MLflow version(s) {numbers}"
        )
        if held:
            message += (
                f". MLflow version(s) {numbers} hold the alias(es) {', '.join(held)}, so "
                "programs loading by alias get that copy: move the alias in MLflow or "
                "delete the copy"
            )
        raise_flag(
            name,
            TemplateFlag.Kind.DUPLICATE_VERSION,
            message,
            version=version,
            actor="mlflow",
            source=AuditEvent.Source.EXTERNAL,
        )


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
        extra=record.extra or {},
        author=str(record.metadata.get("author", ""))[:150],
        registered_by=(record.registered_by or "")[:150],
        requested_by=(record.requested_by or "")[:150],
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
    bind_authors(rows)
    TemplateVersion.objects.bulk_create(rows, batch_size=1000)
    ids = [row.pk for row in templates.values()]
    for start in range(0, len(ids), 5000):  # within SQLite's bound on a query's parameters
        Template.objects.filter(pk__in=ids[start : start + 5000]).note_changes()
    record_registration_runs(rows, actor="mlflow")
    events = [
        _event("mlflow", "version.registered", row, None, _state(row), AuditEvent.Source.EXTERNAL)
        for row in rows
    ]
    trail.record_many(events)
    return len(events)


def _has_duplicates(records: list[VersionRecord]) -> bool:
    return len({r.version for r in records}) != len(records)


# Templates mirrored per transaction in a full sync: few commits (each one is an fsync on
# SQLite) without holding row locks on every template for the whole sync.
_SYNC_CHUNK = 100


def sync_registry() -> dict[str, int]:
    """Mirror every template in MLflow (the full sweep); differences not made here are
    audited as external.

    Reads all versions with two paged searches and compares sets of version numbers per
    template, so it does not depend on page offsets staying still while it reads. Only
    templates that differ from the mirror are written. Every version read is verified: its
    text must still hash to the hash it was registered with (``verify_template``). One
    entry that cannot be read or stored is quarantined with its reason (``MlflowProblem``)
    and every other template is mirrored; only MLflow being unreachable stops a sync.
    """
    gateway = get_registry().gateway
    calls_before = gateway.calls
    early = _NewTemplatesWhileReading()
    by_name, problems = gateway.scan_all(on_complete=early.add)
    early.flush()
    counts = _sync(gateway, by_name, problems, scope=None, calls_before=calls_before)
    return {**counts, "changes": counts["changes"] + early.events}


class _NewTemplatesWhileReading:
    """The full sweep's templates new to the mirror, written in bulk as soon as all their
    versions are read, while MLflow produces the next page of versions (its time and ours
    overlap: a first sync of 100,000 versions is mostly these writes and MLflow's reads).

    Only what ``_sync`` would write in bulk anyway: a template the mirror does not know,
    without a duplicated version. A batch that fails is left to ``_sync``, which writes each
    template on its own; a template found to have more versions later (its versions in two
    models) is brought up to date by ``_sync`` as any changed template is.
    """

    BATCH = 500  # templates per transaction

    def __init__(self) -> None:
        self.known = set(Template.objects.values_list("name", flat=True))
        self.waiting: dict[str, list[VersionRecord]] = {}
        self.events = 0

    def add(self, name: str, records: list[VersionRecord]) -> None:
        if name in self.known or _has_duplicates(records):
            return
        self.known.add(name)
        self.waiting[name] = records
        if len(self.waiting) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.waiting = self.waiting, {}
        try:
            with transaction.atomic():
                self.events += _mirror_new_templates(batch)
        except (DatabaseError, ValueError):
            return  # _sync finds them new and writes them one by one, reporting the failure


# A model whose timestamp is this close below the newest one mirrored is listed again (its
# own stamp then tells whether it changed): a write stamped before another but committed
# after it is not missed. Once the newest change is older than twice this by our clock, no
# such write can still be coming, and a pass lists only models stamped after it.
SYNC_OVERLAP_MS = 60_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def sync_changes() -> dict[str, int]:
    """The incremental pass: read only the templates whose registered model changed since
    the last pass, and mirror and verify them as the full sweep does.

    A model is changed when its ``last_updated_timestamp`` differs from the one recorded
    when it was last read in full (``Template.mlflow_updated_ms``). On MLflow 3.17 that
    timestamp moves with a new version, a deleted version and a legacy stage change; alias
    moves, tag edits and a deleted model move none (docs/mlflow-contract.md, measured with
    ``python -m bench.timestamps``): webhooks (``sync_template``) and the full sweep every
    ``SYNC_FULL_SWEEP_SECONDS`` (``sync_registry``) see those. A mirror never swept in
    full is swept in full. Native prompts are passed over the same way, with one more call
    (``native.sync_native_changes``): two calls in all when nothing changed.
    """
    since = Template.objects.aggregate(newest=Max("mlflow_updated_ms"))["newest"]
    if since is None:
        return {**sync_registry(), "full_sweep": 1}
    gateway = get_registry().gateway
    calls_before = gateway.calls
    if _now_ms() - since > 2 * SYNC_OVERLAP_MS:
        listed = gateway.models_changed_since(since + 1)  # an idle registry: an empty page
    else:
        listed = gateway.models_changed_since(since - SYNC_OVERLAP_MS)
    known = dict(
        Template.objects.filter(
            registered_model_name__in=[model.name for model in listed]
        ).values_list("registered_model_name", "mlflow_updated_ms")
    )
    changed = [m for m in listed if known.get(m.name) != int(m.last_updated_timestamp or 0)]
    if changed:
        by_name, problems = gateway.scan_models(changed)
        scope = set(gateway.model_stamps)
        counts = _sync(gateway, by_name, problems, scope=scope, calls_before=calls_before)
    else:
        counts = dict(_EMPTY)
    # MLflow's own prompts the same way: one more call, and the changed ones read.
    native = sync_native_changes(
        gateway, overlap_ms=SYNC_OVERLAP_MS, now_ms=_now_ms(), first_since=since
    )
    return {**counts, **native, "mlflow_calls": gateway.calls - calls_before}


def sync_one(name: str) -> dict[str, int]:
    """Read one template in full now (a webhook named it) and mirror and verify it as the
    full sweep does: new, moved, tampered and deleted versions, a deleted model (all its
    versions marked missing), unreadable entries quarantined."""
    gateway = get_registry().gateway
    calls_before = gateway.calls
    by_name, problems = gateway.scan_template(name)
    return _sync(gateway, by_name, problems, scope={name}, calls_before=calls_before)


_EMPTY = {
    "templates": 0,
    "versions": 0,
    "changed_templates": 0,
    "changes": 0,
    "tampered": 0,
    "deleted": 0,
    "marks_repaired": 0,
    "marks_reported": 0,
    "quarantined": 0,
}


def _sync(gateway, by_name, problems, *, scope: set[str] | None, calls_before: int) -> dict:
    """Mirror and verify what was read. ``scope``: the templates read (None: all of them,
    the full sweep); a mirrored template in scope that MLflow no longer has is deleted."""
    stamps = dict(gateway.model_stamps)
    untagged = list(gateway.untagged)
    mirrored: dict[str, dict[str, str]] = {}
    rows = TemplateVersion.objects.filter(missing_since__isnull=True)
    if scope is not None:
        rows = rows.filter(template__name__in=sorted(scope))
    for name, version, stage in rows.values_list("template__name", "version", "stage"):
        mirrored.setdefault(name, {})[version] = stage
    changed = [
        name
        for name, records in sorted(by_name.items())
        if {r.version: r.stage.value for r in canonical_versions(records)} != mirrored.get(name)
        or _has_duplicates(records)
    ]
    # A template new to the mirror with a duplicated version goes through mirror_template,
    # which reports the duplicate; the bulk path is for the clean thousands.
    new = [name for name in changed if name not in mirrored and not _has_duplicates(by_name[name])]
    try:
        with transaction.atomic():
            events = _mirror_new_templates({name: by_name[name] for name in new})
    except (
        DatabaseError,
        ValueError,
    ):  # one entry refused (database or parse): each on its own below
        events, new = 0, []
    changed = [name for name in changed if name not in new]
    for start in range(0, len(changed), _SYNC_CHUNK):
        with trail.atomic():
            for name in changed[start : start + _SYNC_CHUNK]:
                try:
                    with transaction.atomic():  # a savepoint: one template's failure is its own
                        events += len(
                            mirror_template(name, by_name[name], source=AuditEvent.Source.EXTERNAL)
                        )
                except (DatabaseError, ValueError) as error:
                    problems.append(_template_problem(name, error))
    unread = {p.template for p in problems if p.template}
    deleted = 0
    for name in sorted(set(mirrored) - set(by_name) - unread):  # the whole model is gone
        deleted += verify_template(name, [], complete=True)["deleted"]
    tampered = 0
    for name in _to_verify(by_name, unread, scope):
        found = verify_template(name, by_name[name], complete=name not in unread)
        tampered, deleted = tampered + found["tampered"], deleted + found["deleted"]
    repaired = reported = 0
    for name, records in sorted(by_name.items()):
        out = marks_out_of_step(records)
        if out:
            fixed, flagged = reconcile_marks(name, out)
            repaired, reported = repaired + fixed, reported + flagged
    for name, number in untagged:
        raise_flag(
            name,
            TemplateFlag.Kind.OUTSIDE_CHANGE,
            f"{name}: MLflow version {number} of its registered model carries none of "
            "registry_ui's tags: it was added outside registry_ui and is not a reviewed "
            "version. Programs loading that version number get it; delete it in MLflow",
            version=f"mlflow-{number}",
            actor="mlflow",
            source=AuditEvent.Source.EXTERNAL,
        )
    quarantined = record_problems(problems, scope=scope)
    # MLflow's own prompts (prompts/native.py): two calls, in the full sweep only (their
    # webhooks sync one prompt; the incremental pass stays one call when nothing changed).
    native_counts = sync_native_prompts(gateway) if scope is None else {}
    Template.objects.filter(name__in=list(by_name)).update(synced_at=timezone.now())
    _record_stamps({name: ms for name, ms in stamps.items() if name not in unread})
    return {
        "templates": len(by_name),
        "versions": sum(len(records) for records in by_name.values()),
        "changed_templates": len(changed),
        "changes": events,
        "tampered": tampered,
        "deleted": deleted,
        "marks_repaired": repaired,
        "marks_reported": reported,
        "quarantined": quarantined,
        **native_counts,
        "mlflow_calls": gateway.calls - calls_before,
    }


def _to_verify(by_name, unread: set[str], scope: set[str] | None) -> list[str]:
    """The templates read whose mirror verify_template would change (a version tampered
    with or restored, deleted or back): every version read is hashed here, in one pass
    over the mirror's rows, and only those templates take the audit trail's lock."""
    canonical = {
        name: {r.version: r for r in canonical_versions(rs)} for name, rs in by_name.items()
    }
    rows = TemplateVersion.objects.all()
    if scope is not None:
        rows = rows.filter(template__name__in=sorted(scope))
    due = set()
    for name, version, sha, missing, tampered, extra in rows.values_list(
        "template__name", "version", "content_sha256", "missing_since", "tampered_at", "extra"
    ).iterator(chunk_size=5000):
        if name not in canonical or name in due:
            continue
        record = canonical[name].get(version)
        if record is None:
            if missing is None and name not in unread:
                due.add(name)
            continue
        served = content_hash(record.template, record.metadata, record.extra)
        changed = missing is not None or (served != sha) != (tampered is not None)
        unfilled = bool(record.extra) and not extra and served == sha  # mirrored before 0016
        if changed or unfilled:
            due.add(name)
    return sorted(due)


def _record_stamps(stamps: dict[str, int]) -> None:
    """Remember each template's model timestamp as read; only the ones that moved are
    written (an idle full sweep writes none)."""
    if not stamps:
        return
    names = sorted(stamps)
    moved = []
    for start in range(0, len(names), 1000):
        for template in Template.objects.filter(name__in=names[start : start + 1000]).only(
            "pk", "name", "mlflow_updated_ms"
        ):
            if template.mlflow_updated_ms != stamps[template.name]:
                template.mlflow_updated_ms = stamps[template.name]
                moved.append(template)
    Template.objects.bulk_update(moved, ["mlflow_updated_ms"], batch_size=500)


def _template_problem(name: str, error: Exception) -> EntryProblem:
    return EntryProblem(
        registered_name=to_registered_model_name(name),
        mlflow_version=None,
        template=name,
        problem=f"template {name!r} could not be mirrored: {type(error).__name__}: {error}",
    )


def record_problems(problems: list[EntryProblem], *, scope: set[str] | None = None) -> int:
    """Keep the list of quarantined entries current: new ones audited once, ones a sync can
    read again resolved (audited too). ``scope``: the templates that were read (None: all);
    open problems of other templates stay as they are. Returns how many are open."""
    now = timezone.now()
    with trail.atomic():
        rows = MlflowProblem.objects.select_for_update().filter(resolved_at__isnull=True)
        if scope is not None:
            # The templates read, and every registered model a problem was found in: a model
            # renamed outside registry_ui is read under a name that maps to no template in
            # the scope, and its open rows must be found to be kept, not filed again.
            registered = {to_registered_model_name(name) for name in scope}
            registered.update(problem.registered_name[:500] for problem in problems)
            rows = rows.filter(
                Q(template_name__in=sorted(scope)) | Q(registered_model_name__in=sorted(registered))
            )
        open_rows = {(p.registered_model_name, p.mlflow_version): p for p in rows}
        seen = set()
        for problem in problems:
            key = (problem.registered_name[:500], problem.mlflow_version or "")
            seen.add(key)
            row = open_rows.get(key)
            if row is not None:
                MlflowProblem.objects.filter(pk=row.pk).update(
                    last_seen=now, problem=problem.problem[:MAX_TEXT]
                )
                continue
            MlflowProblem.objects.create(
                registered_model_name=key[0],
                mlflow_version=key[1],
                template_name=(problem.template or "")[:500],
                problem=problem.problem[:MAX_TEXT],
                last_seen=now,
            )
            trail.record(
                actor="mlflow",
                action="mlflow.entry_quarantined",
                object_type="mlflow_entry",
                object_id=f"{key[0]}/{key[1]}".rstrip("/")[:250],
                before=None,
                after={"template": problem.template, "problem": problem.problem[:MAX_TEXT]},
                source=AuditEvent.Source.EXTERNAL,
            )
        for key, row in open_rows.items():
            if key not in seen:
                MlflowProblem.objects.filter(pk=row.pk).update(resolved_at=now)
                trail.record(
                    actor="mlflow",
                    action="mlflow.entry_readable",
                    object_type="mlflow_entry",
                    object_id=f"{key[0]}/{key[1]}".rstrip("/")[:250],
                    before={"problem": row.problem},
                    after=None,
                    source=AuditEvent.Source.EXTERNAL,
                )
    return len(seen)


def verify_template(name: str, records: list[VersionRecord], *, complete: bool) -> dict:
    """Check the mirror's versions of a template against what MLflow has now.

    - tampered: a version whose text or metadata in MLflow no longer hashes to the hash it
      was registered with (the mirror keeps the registered text) is marked, audited as
      ``version.tampered`` and flagged; restored text clears the mark (audited);
    - deleted (only when ``records`` are all of the template's versions): a version MLflow
      no longer has is marked missing, leaves its stage, is audited and flagged; one that
      comes back is mirrored again, its new text if it was registered anew.
    Open requests on the template go stale when either happens (its stage epoch moves).
    """
    rows = {
        row.version: row
        for row in TemplateVersion.objects.filter(template__name=name).select_related("template")
    }
    if not rows:
        return {"tampered": 0, "deleted": 0}
    found = {"tampered": 0, "deleted": 0}
    canonical = {r.version: r for r in canonical_versions(records)}
    touched = False
    with trail.atomic():
        for version, row in rows.items():
            record = canonical.get(version)
            if record is None:
                if complete and row.missing_since is None:
                    _mark_missing(row)
                    found["deleted"] += 1
                    touched = True
                continue
            served = content_hash(record.template, record.metadata, record.extra)
            if row.missing_since is not None:
                _mark_back(row, record, served)
                touched = True
            elif served != row.content_sha256 and row.tampered_at is None:
                _mark_tampered(row, record, served)
                found["tampered"] += 1
                touched = True
            elif record.extra and not row.extra:
                for filled in _fill_extra(row, record):
                    filled.save(update_fields=["extra"])
            elif served == row.content_sha256 and row.tampered_at is not None:
                _clear_tampered(row)
        if touched:
            template = Template.objects.select_for_update().get(name=name)
            template.stage_epoch += 1
            template.save(update_fields=["stage_epoch"])
            stages_moved.send(sender=Template, template=template, actor="mlflow", source="external")
    return found


def _mark_missing(row: TemplateVersion) -> None:
    before = {"stage": row.stage, "mlflow_version": row.mlflow_version}
    row.missing_since = timezone.now()
    if row.stage in _HELD_STAGES:
        row.stage = Stage.ARCHIVED  # MLflow's alias went with the version
    row.save(update_fields=["missing_since", "stage"])
    name = row.template.name
    _audit(row, "version.deleted", before, {"stage": row.stage, "deleted_in_mlflow": True})
    raise_flag(
        name,
        TemplateFlag.Kind.OUTSIDE_CHANGE,
        f"{name} {row.version} (MLflow version {row.mlflow_version}) was deleted in MLflow, "
        f"outside registry_ui{' while it held ' + before['stage'] if before['stage'] in _HELD_STAGES else ''}"  # noqa: E501
        ". Programs loading it get an error; register it again or promote another version",
        version=row.version,
        actor="mlflow",
        source=AuditEvent.Source.EXTERNAL,
    )


def _mark_back(row: TemplateVersion, record: VersionRecord, served: str) -> None:
    """A version deleted before is in MLflow again: the same content, or a new one."""
    before = {"mlflow_version": row.mlflow_version, "content_sha256": row.content_sha256}
    row.missing_since = None
    row.mlflow_version = record.mlflow_version
    row.stage = record.stage.value if record.stage.value not in _HELD_STAGES else Stage.DEV
    fields = ["missing_since", "mlflow_version", "stage"]
    if served != row.content_sha256:
        row.text, row.metadata, row.content_sha256 = record.template, record.metadata, served
        row.extra = record.extra or {}
        row.variables = list(parse_template(record.template).variables)
        row.tampered_at = None
        fields += ["text", "metadata", "extra", "content_sha256", "variables", "tampered_at"]
    row.save(update_fields=fields)
    after = {"mlflow_version": row.mlflow_version, "content_sha256": row.content_sha256}
    _audit(row, "version.registered_again", before, after)


def _mark_tampered(row: TemplateVersion, record: VersionRecord, served: str) -> None:
    row.tampered_at = timezone.now()
    row.save(update_fields=["tampered_at"])
    name = row.template.name
    _audit(
        row,
        "version.tampered",
        {"content_sha256": row.content_sha256},
        {"content_sha256": served, "stored_hash_tag": record.content_sha256},
    )
    raise_flag(
        name,
        TemplateFlag.Kind.CONTENT_MISMATCH,
        f"{name} {row.version}: its text or metadata in MLflow (MLflow version "
        f"{record.mlflow_version}) was changed after it was registered and reviewed; it no "
        "longer matches its content hash. Programs loading it through registry_ui refuse it; "
        "requests on it cannot be approved. Register the intended text as a new version",
        version=row.version,
        actor="mlflow",
        source=AuditEvent.Source.EXTERNAL,
    )


def _clear_tampered(row: TemplateVersion) -> None:
    row.tampered_at = None
    row.save(update_fields=["tampered_at"])
    _audit(row, "version.content_restored", None, {"content_sha256": row.content_sha256})


def _audit(row: TemplateVersion, action: str, before, after) -> None:
    trail.record(
        actor="mlflow",
        action=action,
        object_type="template_version",
        object_id=f"{row.template.name}@{row.version}",
        before=before,
        after=after,
        source=AuditEvent.Source.EXTERNAL,
    )


def reconcile_marks(name: str, out: list[MarksOutOfStep]) -> tuple[int, int]:
    """Put stage tags and legacy stages back in step with the aliases where registry_ui
    left them behind; report the rest. Returns (repaired, reported).

    Ours: a stage tag behind the aliases (only registry_ui writes that tag, after the
    alias), or a legacy stage on a version one of our recorded stage moves was bringing to
    that stage (killed between its tag and legacy writes). Anything else, say a legacy
    stage set in MLflow's UI, is someone else's: flagged and audited as external, and left
    as it is for a reviewer (programs calling get_latest_versions see it meanwhile).
    """
    gateway = get_registry().gateway
    repaired = reported = 0
    for item in out:
        record = item.record
        if item.tag_wrong or _our_move(name, record.mlflow_version, item.stage):
            gateway.write_stage_marks(
                name,
                record.mlflow_version,
                item.stage,
                tag=record.stage_tag,
                legacy=record.legacy_stage,
            )
            trail.record(
                actor="registry_ui",
                action="version.marks_repaired",
                object_type="template_version",
                object_id=f"{name}@{record.version}",
                before={"stage_tag": record.stage_tag, "legacy_stage": record.legacy_stage},
                after={"stage_tag": item.stage.value, "legacy_stage": item.stage.legacy_name},
                source=AuditEvent.Source.WORKER,
            )
            repaired += 1
        else:
            raise_flag(
                name,
                TemplateFlag.Kind.OUTSIDE_CHANGE,
                f"{name} {record.version} (MLflow version {record.mlflow_version}) has the "
                f"legacy stage {record.legacy_stage} in MLflow, but its aliases make it "
                f"{item.stage}: someone set it outside registry_ui. Programs that call "
                "get_latest_versions get this version for that stage; set it back in MLflow "
                f"to {item.stage.legacy_name}, or promote it through a request",
                version=record.version,
                actor="mlflow",
                source=AuditEvent.Source.EXTERNAL,
            )
            reported += 1
    return repaired, reported


def _our_move(name: str, number: str, stage: ModelStage) -> bool:
    """Whether a stage move of ours was bringing MLflow version ``number`` to ``stage``."""
    return any(
        intent.get("stages_after", {}).get(number) == stage.value
        for intent in Operation.objects.filter(template_name=name)
        .exclude(intent={})
        .order_by("-created_at")
        .values_list("intent", flat=True)[:20]
    )
