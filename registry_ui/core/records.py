"""Plain records passed between the gateway and its callers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry_ui.core.stages import ModelStage


def content_hash(
    template: str, metadata: Mapping[str, Any] | None, extra: Mapping[str, Any] | None = None
) -> str:
    """The identity of a version's content: same template and metadata, same hash.

    ``extra``: a chat template's messages, model configuration and response format
    (core/messages.py). Only those present are hashed, so a version without any keeps the
    hash it always had.
    """
    content = {"template": template, "metadata": dict(metadata or {})}
    content.update({k: v for k, v in (extra or {}).items() if v is not None})
    payload = json.dumps(
        content,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: str
    template: str
    metadata: dict[str, Any]
    stage: ModelStage
    mlflow_version: str
    content_sha256: str
    created_at: datetime | None = None
    run_id: str | None = None
    source: str | None = None
    operation_id: str | None = None
    registered_by: str | None = None
    aliases: tuple[str, ...] = field(default=())
    # The stage marks as MLflow has them (None: not read): the tag registry_ui.stage and
    # MLflow's legacy stage. ``stage`` is what the aliases say; the marks should follow it.
    stage_tag: str | None = field(default=None, compare=False)
    legacy_stage: str | None = field(default=None, compare=False)
    # A chat template's messages, its model configuration and response format, those present
    # (core/messages.py); {} for a plain text template.
    extra: dict[str, Any] = field(default_factory=dict)
    # A CI account's registration: the person who asked for it (an author of the version).
    requested_by: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EntryProblem:
    """A registry entry carrying our tags that cannot be read, and why (the sync lists it)."""

    registered_name: str
    mlflow_version: str | None
    template: str | None
    problem: str


@dataclass(frozen=True)
class RunMetrics:
    """The latest metrics of an MLflow run tagged with a template version."""

    run_id: str
    template: str
    version: str
    metrics: dict[str, float]
    started_at: datetime | None = None


def _mlflow_number(record: VersionRecord) -> int:
    return int(record.mlflow_version) if str(record.mlflow_version).isdigit() else 1 << 62


def canonical_versions(records: Iterable[VersionRecord]) -> list[VersionRecord]:
    """One record per semantic version: the lowest MLflow version number wins.

    MLflow has no unique constraint on our version tag, so a client retry or another
    program can register the same semantic version twice. Every reader picks the same one
    (the first registered), so stages never flip between them.
    """
    kept: dict[str, VersionRecord] = {}
    for record in sorted(records, key=_mlflow_number):
        kept.setdefault(record.version, record)
    return list(kept.values())


def duplicate_versions(records: Iterable[VersionRecord]) -> dict[str, list[VersionRecord]]:
    """Semantic version -> the extra records beyond the canonical one (lowest number)."""
    by_version: dict[str, list[VersionRecord]] = {}
    for record in sorted(records, key=_mlflow_number):
        by_version.setdefault(record.version, []).append(record)
    return {version: found[1:] for version, found in by_version.items() if len(found) > 1}
