"""Reads for the pages."""

from __future__ import annotations

from dataclasses import dataclass

from registry_ui.core.records import VersionRecord
from registry_ui.core.stages import ModelStage


@dataclass(frozen=True)
class TemplateOverview:
    name: str
    versions: list[VersionRecord]

    def holder(self, stage: ModelStage) -> VersionRecord | None:
        return next((v for v in self.versions if v.stage == stage), None)

    @property
    def production(self) -> VersionRecord | None:
        return self.holder(ModelStage.PRODUCTION)

    @property
    def staging(self) -> VersionRecord | None:
        return self.holder(ModelStage.STAGING)

    @property
    def latest(self) -> VersionRecord:
        return self.versions[-1]


def template_overviews() -> list[TemplateOverview]:
    """Every template with its versions, read from the registry in one paged search.

    The workers issue replaces this with the Django mirror so pages never wait on MLflow.
    """
    from registry_ui.prompt_model import get_registry

    by_name = get_registry().gateway.all_versions()
    return [TemplateOverview(name, by_name[name]) for name in sorted(by_name)]
