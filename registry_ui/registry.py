"""Registry rules over the gateway: registration, promotion and the lookup cache.

This is where "the same content under an existing version returns that version", "a
version must be greater than the latest and bumped enough" and "dev -> staging ->
production" are enforced for every caller: PromptModel, the workers and the commands.
No Django here; MLflow only through the gateway.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry_ui import config
from registry_ui.core.checks import MetadataPolicy, registration_problems
from registry_ui.core.errors import BatchRegistrationError, ContentMismatchError, NotFoundError
from registry_ui.core.intents import Intent, OutsideChangeError, plan_promotion, plan_rollback
from registry_ui.core.native import (
    SEMVER_TAG,
    NativeVersion,
    derive_semvers,
    messages_to_native,
    published_name,
    to_native,
)
from registry_ui.core.records import VersionRecord, canonical_versions, content_hash
from registry_ui.core.semver import SemVer, VersionBumpError, check_bump
from registry_ui.core.stages import ModelStage

logger = logging.getLogger("registry_ui.registry")


@dataclass(frozen=True)
class NewVersion:
    """A version to register, already validated by its caller (PromptModel)."""

    name: str
    version: str
    template: str
    metadata: dict[str, Any]
    operation_id: str | None = None
    # Messages, model configuration, response format (core/messages.normalize_extra).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def content_sha256(self) -> str:
        return content_hash(self.template, self.metadata, self.extra)


@dataclass(frozen=True)
class RegistrationResult:
    record: VersionRecord
    created: bool  # False: the same content was already registered under this version


@dataclass(frozen=True)
class Published:
    """What ``Registry.sync_published`` did: the native prompt, its staging/production
    aliases (alias -> native version number), how many versions it wrote, and the versions
    left out (semantic version -> reasons the native format cannot express them)."""

    name: str
    aliases: dict[str, str]
    written: int
    skipped: dict[str, list[str]]


def _native_reasons(record: VersionRecord) -> list[str] | None:
    """None when the version can be published as a native prompt, else the reasons."""
    messages = (record.extra or {}).get("messages")
    if messages:
        converted, reasons = messages_to_native(messages)
        return None if converted is not None else list(reasons)
    conversion = to_native(record.template)
    return None if conversion.publishable else list(conversion.reasons)


class NotPublishableError(ValueError):
    """A template the native format cannot express; ``reasons`` says each place and why."""

    def __init__(self, name: str, version: str, reasons: Sequence[str]):
        self.reasons = list(reasons)
        super().__init__(
            f"{name} {version} cannot be published as a native prompt: " + "; ".join(reasons)
        )

    def __reduce__(self):
        return _rebuild_not_publishable, (str(self), self.reasons)


def _rebuild_not_publishable(message: str, reasons: list[str]) -> NotPublishableError:
    error = NotPublishableError.__new__(NotPublishableError)
    ValueError.__init__(error, message)
    error.reasons = reasons
    return error


class TemplateRegistry:
    def __init__(
        self,
        gateway,
        *,
        cache_ttl: float | None = None,
        metadata_policy: MetadataPolicy | None = None,
    ):
        self.gateway = gateway
        self.cache_ttl = config.cache_ttl_seconds() if cache_ttl is None else cache_ttl
        # None: REGISTRY_UI_REQUIRED_METADATA, read at each registration (config.py).
        self._metadata_policy = metadata_policy
        self._cache: dict[tuple, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        # Names found to be native prompts: their lookups skip the template path (a miss).
        self.native_names: set[str] = set()

    # -- registration -----------------------------------------------------------------------

    def metadata_policy(self) -> MetadataPolicy:
        """The metadata every new version must carry (versions already registered are kept)."""
        if self._metadata_policy is not None:
            return self._metadata_policy
        return config.required_metadata()

    def register_many(
        self, versions: Sequence[NewVersion], *, actor: str = "registry_ui", reason: str = ""
    ) -> list[RegistrationResult]:
        """Register a batch with one provenance run and one create call per new version.

        Every problem in the batch is found before anything is written, so bad input never
        leaves a batch half applied. Re-running the same batch creates nothing.
        """
        existing = self.gateway.list_versions_many({v.name for v in versions})
        plan, errors = _plan_registrations(versions, existing, self.metadata_policy())
        if errors:
            raise BatchRegistrationError(errors)
        to_create = [item for item in plan if item[1] is None]
        run_id = None
        if to_create:
            run_id = self.gateway.start_registration_run(
                actor=actor, reason=reason, count=len(to_create)
            )
        results = []
        try:
            for new, found in plan:
                if found is not None:
                    results.append(RegistrationResult(found, created=False))
                    continue
                record = self._create(new, run_id=run_id, actor=actor)
                results.append(RegistrationResult(record, created=True))
        finally:
            if run_id is not None:
                self.gateway.finish_registration_run(run_id)
            self.invalidate(*{v.name for v in versions})
        return results

    def plan_registrations(
        self,
        versions: Sequence[NewVersion],
        *,
        existing: dict[str, list[VersionRecord]] | None = None,
    ) -> list[NewVersion]:
        """The versions of a batch still to create; raises if any is refused (nothing written).

        The plan compares contents only, so stages are not read (one search per template).
        ``existing``: the templates' versions as the caller knows them (the dashboard's
        mirror), instead of reading MLflow; the worker checks against MLflow again.
        """
        if existing is None:
            existing = self.gateway.list_versions_many({v.name for v in versions}, stages=False)
        plan, errors = _plan_registrations(versions, existing, self.metadata_policy())
        if errors:
            raise BatchRegistrationError(errors)
        return [new for new, found in plan if found is None]

    def register_operation(
        self,
        new: NewVersion,
        *,
        actor: str,
        reason: str,
        run_id_for_batch: Callable[[], str],
        may_exist: bool,
        known: list[VersionRecord] | None = None,
        requested_by: str = "",
    ) -> VersionRecord:
        """Register one version of a worker's operation; re-running it records, not repeats.

        Callers run one operation per template at a time, so the check and the create
        cannot be interleaved with another write to the same template; ``known`` is the
        template's versions as the caller last read or wrote them (None: read them now).
        """
        if may_exist and new.operation_id:
            found = self.gateway.find_by_operation(new.name, new.operation_id)
            if found is not None:
                return found
        if known is None:
            known = self.gateway.versions_to_register_into(new.name)
        plan, errors = _plan_registrations([new], {new.name: known}, self.metadata_policy())
        if errors:
            raise BatchRegistrationError(errors)
        [(_, found)] = plan
        if found is not None:
            return found
        record = self._create(
            new, run_id=run_id_for_batch(), actor=actor, requested_by=requested_by
        )
        self.invalidate(new.name)
        return record

    def _create(
        self, new: NewVersion, *, run_id: str, actor: str, requested_by: str = ""
    ) -> VersionRecord:
        return self.gateway.create_version(
            name=new.name,
            version=new.version,
            template=new.template,
            metadata=new.metadata,
            content_sha256=new.content_sha256,
            run_id=run_id,
            actor=actor,
            operation_id=new.operation_id or uuid.uuid4().hex,
            **({"extra": new.extra} if new.extra else {}),
            requested_by=requested_by,
        )

    # -- stages -----------------------------------------------------------------------------

    def promote(self, name: str, version: str, target: ModelStage | str) -> VersionRecord:
        """Move one version along dev -> staging -> production; safe to re-run.

        Planned (``plan_promotion``), then applied with a compare-and-set on each alias
        (``apply_intent``): an alias someone else moved meanwhile is refused, never
        overwritten. Without a dashboard, nothing records the plan between the two; the
        workers record it on the operation so a re-run finishes the same move.
        """
        intent = self.plan_promotion(name, version, target)
        self.apply_intent(intent)
        return _find(self.gateway.list_versions(name), name, version)

    def rollback(self, name: str, version: str) -> VersionRecord:
        """Bring an archived version back to production (it held production before).

        The current production version becomes archived. Safe to re-run.
        """
        intent = self.plan_rollback(name, version)
        self.apply_intent(intent)
        return _find(self.gateway.list_versions(name), name, version)

    def plan_promotion(self, name: str, version: str, target: ModelStage | str) -> Intent:
        """What promoting ``version`` to ``target`` will write (reads MLflow, writes nothing).

        Raises ContentMismatchError when the version's text no longer matches its hash.
        """
        records = self.gateway.list_versions(name)
        intent = plan_promotion(name, records, version, target)
        _verify_content(_find(canonical_versions(records), name, version))
        return intent

    def plan_rollback(self, name: str, version: str) -> Intent:
        records = self.gateway.list_versions(name)
        intent = plan_rollback(name, records, version)
        _verify_content(_find(canonical_versions(records), name, version))
        return intent

    def apply_intent(self, intent: Intent) -> int:
        """Carry out a planned stage move, or finish one a re-run finds half done.

        Each alias write is a compare-and-set: the holder is read immediately before it
        (the first read, then each write's check read) and must be the step's ``before``;
        it is read again after, and must be the step's ``after``. MLflow has no
        conditional write, so a write by someone else that lands between our read and our
        write (one round trip, ~20 ms) is the one change this cannot see; a change after
        it is seen and refused. Then the stage tags and legacy stages of the versions the
        move touches are brought in step. Returns the number of MLflow writes made.
        """
        name = intent.template
        aliases = self.gateway.alias_map(name)
        writes = 0
        try:
            for step in intent.remaining_steps(aliases):
                holder = aliases.get(step.alias)
                if holder not in (step.before, step.after):
                    raise OutsideChangeError(name, step.alias, holder, (step.before,))
                if holder != step.after:
                    if step.after is None:
                        self.gateway.delete_alias(name, step.alias)
                    else:
                        self.gateway.set_alias(name, step.alias, step.after)
                    writes += 1
                aliases = self.gateway.alias_map(name)
                if aliases.get(step.alias) != step.after:
                    raise OutsideChangeError(
                        name, step.alias, aliases.get(step.alias), (step.after,)
                    )
            if intent.stages_after:
                marks = self.gateway.stage_marks(name)
                for number, stage in sorted(intent.stages_after.items()):
                    if number not in marks:
                        continue  # deleted meanwhile: nothing to keep in step
                    tag, legacy = marks[number]
                    writes += self.gateway.write_stage_marks(
                        name, number, ModelStage.parse(stage), tag=tag, legacy=legacy
                    )
        finally:
            self.invalidate(name)
        return writes

    def transition_many(
        self, moves: Iterable[tuple[str, str, ModelStage | str]]
    ) -> list[VersionRecord]:
        """Apply several promotions, each checked on its own, template by template."""
        return [self.promote(name, version, target) for name, version, target in moves]

    # -- reads ------------------------------------------------------------------------------

    def versions(self, name: str) -> list[VersionRecord]:
        records = self.gateway.list_versions(name)
        if not records:
            raise NotFoundError(f"template {name!r} is not in the registry")
        return records

    def load(
        self,
        name: str,
        *,
        version: str | None = None,
        stage: ModelStage | str | None = None,
        build: Callable[[VersionRecord], Any] | None = None,
    ) -> Any:
        """One version by semver or by stage (default production), cached with a TTL.

        A hit is a dict lookup and a clock read: a runtime service's hot path makes no
        network call. ``build`` turns the record into what is cached (a PromptModel).
        """
        key = (name, version, None if version else (stage or ModelStage.PRODUCTION), build)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if version and str(version).isdigit():
            # The design note passes MLflow's own version number (from get_latest_versions).
            record = self.gateway.get_mlflow_version(name, str(version))
        elif version:
            record = self.gateway.get_version(name, str(SemVer.parse(version)))
        else:
            record = self.gateway.get_by_stage(name, ModelStage.parse(key[2]))
        # Never serve text edited in MLflow after registration: its hash gives it away.
        _verify_content(record)
        value = build(record) if build else record
        with self._cache_lock:
            self._cache[key] = (time.monotonic() + self.cache_ttl, value)
        return value

    def load_native(
        self,
        name: str,
        *,
        alias: str | None = None,
        version: str | None = None,
        build: Callable[[NativeVersion, str], Any] | None = None,
    ) -> Any:
        """A native prompt's version by alias (default production), by semantic version
        (the registry_ui.semver tag, else derived from the variable diffs) or by MLflow
        number; behind the same TTL cache as load(). ``build(version, semver)`` makes what
        is cached. A miss costs two MLflow calls (the prompt's aliases, its versions).
        """
        key = (name, "native", alias, version, build)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        versions = self.gateway.native_versions(name)
        if not versions:
            raise NotFoundError(f"{name!r} is neither a template nor a native prompt in MLflow")
        semvers = derive_semvers(versions)
        if version and str(version).isdigit():
            chosen = [v for v in versions if v.number == int(version)]
            wanted = f"MLflow version {version}"
        elif version:
            wanted = str(SemVer.parse(version))
            chosen = [v for v in versions if semvers[v.number] == wanted]
            wanted = f"version {wanted}"
        else:
            label = alias or ModelStage.PRODUCTION.value
            chosen = [v for v in versions if label in v.aliases]
            wanted = f"a {label} version"
        if not chosen:
            raise NotFoundError(f"native prompt {name!r} has no {wanted}")
        record = chosen[-1]
        self.native_names.add(name)
        value = build(record, semvers[record.number]) if build else record
        with self._cache_lock:
            self._cache[key] = (time.monotonic() + self.cache_ttl, value)
        return value

    # -- publishing as native prompts ---------------------------------------------------------

    def publish_native(self, name: str, version: str) -> NativeVersion:
        """Publish a registered version as a version of the native prompt
        ``gateway.published_name(name)`` ({x} -> {{x}}), so ``mlflow.genai.load_prompt`` serves
        it. Safe to re-run: a version already published (its registry_ui.semver tag) is
        returned as it is. Raises NotPublishableError with every reason the native format
        cannot express the template.
        """
        record = _find(self.gateway.list_versions(name), name, version)
        target = published_name(name)
        for published in self.gateway.native_versions(target):
            if published.semver == record.version:
                return published
        return self._publish_record(target, record)

    def _publish_record(self, target: str, record: VersionRecord) -> NativeVersion:
        _verify_content(record)
        messages = (record.extra or {}).get("messages")
        if messages:
            converted, reasons = messages_to_native(messages)
        else:
            conversion = to_native(record.template)
            converted, reasons = conversion.text, list(conversion.reasons)
        if converted is None:
            raise NotPublishableError(record.name, record.version, reasons)
        return self.gateway.register_native(
            target,
            converted,
            commit_message=f"registry_ui {record.name} {record.version}",
            tags={
                SEMVER_TAG: record.version,
                "registry_ui.template_name": record.name,
                "registry_ui.content_sha256": record.content_sha256,
            },
            model_config=(record.extra or {}).get("model_config"),
            response_format=(record.extra or {}).get("response_format"),
        )

    def sync_published(self, name: str) -> Published:
        """Bring the template's native prompt in step: every registered version not yet
        published is published (oldest semantic version first), then the native staging and
        production aliases are moved to the versions holding those stages. Idempotent.

        A stage holder the native format cannot express (or whose content no longer matches
        its hash) raises before anything is written; any other such version is left out and
        named in ``Published.skipped`` with its reasons.
        """
        target = published_name(name)
        records = sorted(
            canonical_versions(self.gateway.list_versions(name)),
            key=lambda r: SemVer.parse(r.version),
        )
        current = {v.semver: v for v in self.gateway.native_versions(target)}
        holders = {
            record.stage.value: record
            for record in records
            if record.stage in (ModelStage.STAGING, ModelStage.PRODUCTION)
        }
        for record in holders.values():
            if record.version not in current:
                _verify_content(record)
                if _native_reasons(record) is not None:
                    raise NotPublishableError(name, record.version, _native_reasons(record))
        skipped: dict[str, list[str]] = {}
        written = 0
        for record in records:
            if record.version in current:
                continue
            try:
                current[record.version] = self._publish_record(target, record)
                written += 1
            except NotPublishableError as error:
                skipped[record.version] = error.reasons
            except ContentMismatchError as error:
                skipped[record.version] = [str(error)]
        aliases: dict[str, str] = {}
        for alias, record in sorted(holders.items()):
            published = current[record.version]
            if alias not in published.aliases:
                self.gateway.set_native_alias(target, alias, published.number)
            aliases[alias] = str(published.number)
        for alias in ("staging", "production"):
            if alias not in holders and any(alias in v.aliases for v in current.values()):
                self.gateway.delete_native_alias(target, alias)
        self.invalidate(target)
        return Published(target, aliases, written, skipped)

    def sync_published_aliases(self, name: str) -> dict[str, str]:
        """``sync_published(name)``'s aliases (every version is published by it too)."""
        return self.sync_published(name).aliases

    def cached(self, key: tuple, fetch: Callable[[], Any]) -> Any:
        """Any other registry read behind the same TTL cache as load() (experiments use it).

        ``key[0]`` is a template name (or None), so invalidate(name) drops it too.
        """
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        value = fetch()
        with self._cache_lock:
            self._cache[key] = (time.monotonic() + self.cache_ttl, value)
        return value

    def invalidate(self, *names: str) -> None:
        with self._cache_lock:
            if not names:
                self._cache.clear()
                return
            for key in [k for k in self._cache if k[0] in names]:
                del self._cache[key]


def _verify_content(record: VersionRecord) -> None:
    """Refuse a version whose text or metadata no longer hashes to its stored hash."""
    if content_hash(record.template, record.metadata, record.extra) != record.content_sha256:
        logger.error(
            "refusing %s %s (MLflow version %s): its content does not match its hash",
            record.name,
            record.version,
            record.mlflow_version,
        )
        raise ContentMismatchError(
            f"{record.name} {record.version} (MLflow version {record.mlflow_version}): its "
            "text or metadata in MLflow no longer matches the content hash recorded when it "
            "was registered, so it was changed after registration. It is not moved; "
            "register the intended text as a new version"
        )


def _find(records: list[VersionRecord], name: str, version: str) -> VersionRecord:
    for record in canonical_versions(records):
        if record.version == version:
            return record
    raise NotFoundError(f"template {name!r} has no version {version}")


def _plan_registrations(
    versions: Sequence[NewVersion],
    existing: dict[str, list[VersionRecord]],
    policy: MetadataPolicy | None = None,
) -> tuple[list[tuple[NewVersion, VersionRecord | None]], list[str]]:
    """Decide, for each new version, whether it exists already or may be created.

    Only versions still to create must meet the metadata policy and carry usable test
    cases: one registered before the policy is found, not refused, so re-runs stay no-ops.
    """
    plan: list[tuple[NewVersion, VersionRecord | None]] = []
    errors: list[str] = []
    latest: dict[str, VersionRecord | NewVersion] = {}
    for name, records in existing.items():
        if records:
            latest[name] = records[-1]
    by_version = {(r.name, r.version): r for records in existing.values() for r in records}
    seen: dict[tuple[str, str], NewVersion] = {}
    for new in sorted(versions, key=lambda v: (v.name, SemVer.parse(v.version))):
        label = f"{new.name} {new.version}"
        key = (new.name, new.version)
        if key in seen:
            if seen[key].content_sha256 != new.content_sha256:
                errors.append(f"{label}: appears twice in the batch with different content")
            continue
        seen[key] = new
        found = by_version.get(key)
        if found is not None:
            if found.content_sha256 != new.content_sha256:
                errors.append(
                    f"{label}: already registered with different content: a change needs a "
                    "new version number"
                )
            plan.append((new, found))
            continue
        refused = registration_problems(new.metadata, policy, new.extra)
        if refused:
            errors.extend(f"{label}: {problem}" for problem in refused)
            continue
        previous = latest.get(new.name)
        if previous is not None:
            try:
                check_bump(
                    previous.version,
                    previous.template,
                    new.version,
                    new.template,
                    previous.metadata,
                    new.metadata,
                    old_extra=previous.extra,
                    new_extra=new.extra,
                )
            except VersionBumpError as error:
                errors.append(f"{label}: {error}")
                continue
        latest[new.name] = new
        plan.append((new, None))
    return plan, errors
