"""A/B experiments: their configuration and the sticky assignment of units to variants.

Pure Python (no Django, no MLflow, no scipy): a runtime service assigns units on its hot
path, so this module stays cheap to import. The statistics are in experiment_stats.py.

Assignment is deterministic: sha256 of the experiment key and the unit id picks one of
10,000 buckets, and the variants' weights cut the buckets into consecutive ranges. The
same unit gets the same variant in every process, after every restart, on every machine;
changing one variant's weight moves only the units whose buckets change hands.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BUCKETS = 10_000
KINDS = ("rate", "mean")  # a rate: each outcome is 0 or 1; a mean: any number
KEY_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
VARIANT_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?")
METRIC_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_VARIANTS = 10
# The registered model's tag that publishes an experiment to runtime services.
TAG_PREFIX = "registry_ui.experiment."


class ExperimentConfigError(ValueError):
    """An experiment definition that cannot run; the message names the field."""


@dataclass(frozen=True)
class Variant:
    name: str
    version: str  # the template's semantic version this variant serves
    weight: int  # a share of traffic, relative to the other variants' weights


@dataclass(frozen=True)
class ExperimentConfig:
    """What a runtime service needs to assign units; published as JSON in MLflow."""

    key: str
    template: str
    variants: tuple[Variant, ...]
    metric: str
    kind: str = "rate"
    status: str = "running"  # running | stopped
    start: datetime | None = None
    stop: datetime | None = None
    _thresholds: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        check_config(self)
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "_thresholds", thresholds([v.weight for v in self.variants]))

    @property
    def control(self) -> Variant:
        """The first variant: what units get outside the experiment's window."""
        return self.variants[0]

    def is_live(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return (
            self.status == "running"
            and (self.start is None or self.start <= now)
            and (self.stop is None or now < self.stop)
        )

    def assign(self, unit_id: str) -> Variant:
        """The unit's variant while the experiment runs (ignores the window: see is_live)."""
        return self.variants[bisect.bisect_right(self._thresholds, bucket(self.key, unit_id))]

    # -- the published form ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "template": self.template,
            "variants": [
                {"name": v.name, "version": v.version, "weight": v.weight} for v in self.variants
            ],
            "metric": self.metric,
            "kind": self.kind,
            "status": self.status,
            "start": _iso(self.start),
            "stop": _iso(self.stop),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        try:
            return cls(
                key=data["key"],
                template=data["template"],
                variants=tuple(
                    Variant(str(v["name"]), str(v["version"]), int(v["weight"]))
                    for v in data["variants"]
                ),
                metric=data["metric"],
                kind=data.get("kind", "rate"),
                status=data.get("status", "running"),
                start=_parse_time(data.get("start")),
                stop=_parse_time(data.get("stop")),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ExperimentConfigError):
                raise
            raise ExperimentConfigError(f"malformed experiment configuration: {error!r}") from None

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ExperimentConfigError(f"experiment configuration is not JSON: {error}") from None
        return cls.from_dict(data)


def tag_name(key: str) -> str:
    return TAG_PREFIX + key


def bucket(key: str, unit_id: str) -> int:
    """The unit's bucket in [0, BUCKETS): stable across processes (unlike hash())."""
    digest = hashlib.sha256(f"{key}\x00{unit_id}".encode()).digest()
    # 64 bits modulo 10,000: the bias is below 1e-15, far under any sampling noise.
    return int.from_bytes(digest[:8], "big") % BUCKETS


def thresholds(weights: Sequence[int]) -> tuple[int, ...]:
    """The upper bucket bound of each variant but the last (for bisect)."""
    total = sum(weights)
    bounds, running = [], 0
    for weight in weights[:-1]:
        running += weight
        bounds.append(round(BUCKETS * running / total))
    return tuple(bounds)


def check_config(config: ExperimentConfig) -> None:
    """Refuse a configuration that cannot run, naming the field that is wrong."""
    if not isinstance(config.key, str) or not KEY_RE.fullmatch(config.key):
        raise ExperimentConfigError(
            f"key {config.key!r}: use 2-64 lower-case letters, digits and dashes, "
            "e.g. hook-cta-2026-11"
        )
    if not isinstance(config.metric, str) or not METRIC_RE.fullmatch(config.metric):
        raise ExperimentConfigError(
            f"metric {config.metric!r}: use lower-case letters, digits and underscores, "
            "starting with a letter, e.g. engagement"
        )
    if config.kind not in KINDS:
        raise ExperimentConfigError(f"kind {config.kind!r}: use rate or mean")
    if config.status not in ("running", "stopped"):
        raise ExperimentConfigError(f"status {config.status!r}: use running or stopped")
    variants = list(config.variants)
    if not 2 <= len(variants) <= MAX_VARIANTS:
        raise ExperimentConfigError(
            f"variants: {len(variants)} given, an experiment needs 2 to {MAX_VARIANTS}"
        )
    names, versions = set(), set()
    for variant in variants:
        if not VARIANT_RE.fullmatch(variant.name):
            raise ExperimentConfigError(
                f"variant name {variant.name!r}: use lower-case letters, digits, '-' or '_', "
                "e.g. control or treatment"
            )
        if variant.name in names:
            raise ExperimentConfigError(f"variant name {variant.name!r} appears twice")
        if variant.version in versions:
            raise ExperimentConfigError(
                f"version {variant.version} appears in two variants: each variant serves "
                "its own version"
            )
        if isinstance(variant.weight, bool) or not isinstance(variant.weight, int):
            raise ExperimentConfigError(f"variant {variant.name}: weight must be a whole number")
        if not 1 <= variant.weight <= BUCKETS:
            raise ExperimentConfigError(
                f"variant {variant.name}: weight {variant.weight} must be 1 to {BUCKETS}"
            )
        names.add(variant.name)
        versions.add(variant.version)
    for label, moment in (("start", config.start), ("stop", config.stop)):
        if moment is not None and moment.tzinfo is None:
            raise ExperimentConfigError(f"{label} must carry a time zone (UTC)")
    if config.start and config.stop and config.stop <= config.start:
        raise ExperimentConfigError("stop must be after start")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _parse_time(value: str | None) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromisoformat(value)
