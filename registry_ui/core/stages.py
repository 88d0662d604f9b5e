"""Stages a template version moves through, and which moves are allowed.

dev -> staging -> production, never skipping a stage. A version replaced in a stage
becomes archived. MLflow's legacy stage names are kept in step so that consumer code
calling ``get_latest_versions(name, stages=["Production"])`` keeps working.
"""

from __future__ import annotations

import enum


class StageTransitionError(ValueError):
    """A stage move the promotion path does not allow."""


class ModelStage(enum.StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"

    @property
    def legacy_name(self) -> str:
        """The stage name MLflow's deprecated stage API uses."""
        return _LEGACY_NAMES[self]

    @property
    def alias(self) -> str | None:
        """The registered-model alias that marks this stage, if it has one."""
        return self.value if self in (ModelStage.STAGING, ModelStage.PRODUCTION) else None

    @classmethod
    def parse(cls, value: str | ModelStage) -> ModelStage:
        if isinstance(value, ModelStage):
            return value
        text = str(value).strip().lower()
        for stage in cls:
            if text in (stage.value, stage.legacy_name.lower()):
                return stage
        if text in ("none", "development"):
            return cls.DEV
        accepted = ", ".join(s.value for s in cls)
        raise ValueError(f"unknown stage {value!r}: use one of {accepted}")


_LEGACY_NAMES = {
    ModelStage.DEV: "None",
    ModelStage.STAGING: "Staging",
    ModelStage.PRODUCTION: "Production",
    ModelStage.ARCHIVED: "Archived",
}

# The promotion path: the only stage each target may be reached from.
_PROMOTION_SOURCE = {
    ModelStage.STAGING: ModelStage.DEV,
    ModelStage.PRODUCTION: ModelStage.STAGING,
}


def check_promotion(
    current: ModelStage, target: ModelStage, *, label: str = "this version"
) -> bool:
    """Return True when the move is needed, False when the version is already there.

    Raises StageTransitionError for a move off the promotion path, naming the step
    that is missing.
    """
    if current == target:
        return False
    if target not in _PROMOTION_SOURCE:
        raise StageTransitionError(
            f"cannot move {label} to {target}: versions are only promoted to staging or "
            "production (a replaced version is archived automatically)"
        )
    source = _PROMOTION_SOURCE[target]
    if current != source:
        if current == ModelStage.DEV and target == ModelStage.PRODUCTION:
            raise StageTransitionError(
                f"cannot promote {label} from dev straight to production: "
                "promote it to staging first (dev -> staging -> production)"
            )
        raise StageTransitionError(
            f"cannot promote {label} from {current} to {target}: only {source} versions "
            f"can be promoted to {target} (dev -> staging -> production)"
        )
    return True
