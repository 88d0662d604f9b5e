"""What a stage move will do, written down before its first MLflow write.

A stage move changes up to two aliases, then the stage tags and legacy stages of the
versions it touches: three to six MLflow writes, any of which a killed worker, a timeout
or a redelivered message can leave half done. So the move is planned first, as an
``Intent`` recorded on the operation before anything is written:

- ``steps``: the alias writes in order, each with the holder it expects (``before``) and
  the holder it leaves (``after``), as MLflow version numbers (None: no holder);
- ``stages_before`` / ``stages_after``: the stage of every version it touches, before and
  after (tags and legacy stages follow the aliases).

A re-run reads the aliases and asks ``remaining_steps``: an alias at its ``after`` was
written by us, one at its ``before`` is still to write, anything else was moved by
someone else and is an ``OutsideChangeError``. Every prefix of the intent is therefore
recognised as our own, and the move is driven to its end state instead of being taken for
an outside change. ``undo`` plans the way back (a release that failed part way).

Pure logic: no Django, no MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry_ui.core.errors import NotFoundError, RegistryError
from registry_ui.core.records import VersionRecord, canonical_versions
from registry_ui.core.stages import ModelStage, StageTransitionError, check_promotion


class OutsideChangeError(RegistryError, ValueError):
    """An alias is held by a version neither the plan's start nor its end explains."""

    def __init__(self, template: str, alias: str, holder: str | None, expected: Sequence):
        self.template, self.alias, self.holder = template, alias, holder
        self.expected = tuple(expected)
        shown = " or ".join(_holder_text(h) for h in dict.fromkeys(self.expected))
        super().__init__(
            f"the {alias} alias of {template!r} was moved outside registry_ui: it points at "
            f"{_holder_text(holder)}, where this change expected {shown}. Nothing was "
            "overwritten; check the change in MLflow, then file a new request"
        )


def _holder_text(holder: str | None) -> str:
    return "no version" if holder is None else f"MLflow version {holder}"


@dataclass(frozen=True)
class AliasStep:
    alias: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Intent:
    template: str
    action: str  # "promote", "rollback" or "undo"
    version: str | None  # the semantic version moved (None for an undo)
    steps: tuple[AliasStep, ...]
    stages_before: dict[str, str] = field(default_factory=dict)  # MLflow version -> stage
    stages_after: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "action": self.action,
            "version": self.version,
            "steps": [{"alias": s.alias, "before": s.before, "after": s.after} for s in self.steps],
            "stages_before": dict(self.stages_before),
            "stages_after": dict(self.stages_after),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Intent:
        return cls(
            template=data["template"],
            action=data["action"],
            version=data.get("version"),
            steps=tuple(
                AliasStep(s["alias"], s.get("before"), s.get("after")) for s in data["steps"]
            ),
            stages_before=dict(data.get("stages_before") or {}),
            stages_after=dict(data.get("stages_after") or {}),
        )

    def remaining_steps(self, aliases: Mapping[str, str]) -> list[AliasStep]:
        """The steps still to write, given the aliases as MLflow has them now.

        Raises OutsideChangeError when an alias is at neither end of its step: someone
        else moved it, and the plan no longer describes the registry.
        """
        todo = []
        for step in self.steps:
            holder = aliases.get(step.alias)
            if holder == step.after:
                continue
            if holder != step.before:
                raise OutsideChangeError(self.template, step.alias, holder, (step.before,))
            todo.append(step)
        return todo

    def undo(self, aliases: Mapping[str, str]) -> tuple[Intent, list[AliasStep]]:
        """The intent that puts back what this one wrote, and the steps left alone.

        Only our own writes are reversed: an alias still at its ``before`` needs nothing,
        and one moved by someone else since is left as it is (and returned, to report).
        """
        back, foreign = [], []
        for step in reversed(self.steps):
            holder = aliases.get(step.alias)
            if holder == step.after and step.after != step.before:
                back.append(AliasStep(step.alias, step.after, step.before))
            elif holder != step.before:
                foreign.append(step)
        undone = Intent(
            template=self.template,
            action="undo",
            version=self.version,
            steps=tuple(back),
            stages_before=dict(self.stages_after),
            # Versions an outside move touched keep the stages that move gave them.
            stages_after={
                number: stage
                for number, stage in self.stages_before.items()
                if number not in {n for s in foreign for n in (s.before, s.after)}
            },
        )
        return undone, foreign


def plan_promotion(
    name: str, records: Sequence[VersionRecord], version: str, target: ModelStage | str
) -> Intent:
    """Plan moving ``version`` one stage along dev -> staging -> production.

    Raises StageTransitionError for a move off the promotion path, NotFoundError for a
    version the template does not have.
    """
    target = ModelStage.parse(target)
    records = canonical_versions(records)
    record = _find(name, records, version)
    holders = _holders(records)
    needed = check_promotion(record.stage, target, label=f"{name} {version}")
    number = record.mlflow_version
    steps: list[AliasStep] = []
    if needed:
        steps.append(AliasStep(target.alias, holders.get(target.alias), number))
        if target == ModelStage.PRODUCTION and holders.get("staging") == number:
            steps.append(AliasStep("staging", number, None))
    return _with_stages(name, "promote", version, steps, records, number, target)


def plan_rollback(name: str, records: Sequence[VersionRecord], version: str) -> Intent:
    """Plan bringing an archived version (it held production once) back to production."""
    records = canonical_versions(records)
    record = _find(name, records, version)
    holders = _holders(records)
    number = record.mlflow_version
    if record.stage == ModelStage.PRODUCTION:
        steps = []
    elif record.stage != ModelStage.ARCHIVED:
        raise StageTransitionError(
            f"cannot roll {name} back to {version}: it is {record.stage}; only an "
            "archived version that held production can be brought back"
        )
    else:
        steps = [AliasStep("production", holders.get("production"), number)]
    return _with_stages(name, "rollback", version, steps, records, number, ModelStage.PRODUCTION)


def _with_stages(name, action, version, steps, records, number, target) -> Intent:
    by_number = {r.mlflow_version: r for r in records}
    touched = {number} | {s.before for s in steps if s.before} | {s.after for s in steps if s.after}
    before = {n: by_number[n].stage.value for n in sorted(touched) if n in by_number}
    after = dict(before)
    for n in touched:
        if n in after and n != number:
            after[n] = ModelStage.ARCHIVED.value  # replaced in its stage
    after[number] = target.value
    return Intent(name, action, version, tuple(steps), before, after)


def _holders(records: Sequence[VersionRecord]) -> dict[str, str]:
    return {alias: r.mlflow_version for r in records for alias in r.aliases}


def _find(name: str, records: Sequence[VersionRecord], version: str) -> VersionRecord:
    for record in records:
        if record.version == version:
            return record
    raise NotFoundError(f"template {name!r} has no version {version}")


@dataclass(frozen=True)
class MarksOutOfStep:
    """A version whose stage tag or legacy stage disagrees with what the aliases say."""

    record: VersionRecord
    stage: ModelStage  # what the aliases say
    tag_wrong: bool
    legacy_wrong: bool


def marks_out_of_step(records: Sequence[VersionRecord]) -> list[MarksOutOfStep]:
    """Versions whose stage tag or legacy stage does not follow the aliases.

    A stage move writes the aliases first, then the tags, then the legacy stages: an
    interrupted one leaves marks behind the aliases, which the sync puts in step. Records
    read without their marks (None) are skipped, as are duplicates of a version.
    """
    found = []
    for record in canonical_versions(records):
        if record.stage_tag is None or record.legacy_stage is None:
            continue
        tag_wrong = record.stage_tag != record.stage.value
        legacy_wrong = record.legacy_stage != record.stage.legacy_name
        if tag_wrong or legacy_wrong:
            found.append(MarksOutOfStep(record, record.stage, tag_wrong, legacy_wrong))
    return found
