"""The review policy: who may approve what, when a request may still be carried out, the
metric gate and the dry run of a release. Pure Python: the Django services feed it facts.

Kept apart from Django so that the rules can be read in one place and tested (with
hypothesis) without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from registry_ui.core.stages import ModelStage, StageTransitionError, check_promotion


class PolicyError(ValueError):
    """A request, approval or execution the review policy refuses; the message says why."""


# -- how many approvals ----------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalPolicy:
    """Approvals needed, by distinct reviewers, before a request is carried out."""

    staging: int = 1
    production: int = 2
    rollback: int = 1

    def __post_init__(self) -> None:
        for name in ("staging", "production", "rollback"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
                raise ValueError(f"approvals for {name} must be a whole number 0-10, got {value!r}")
        if self.staging < 1 or self.production < 1:
            raise ValueError("promotions to staging and production need at least one approval")

    def required(self, kind: str, target: ModelStage | str) -> int:
        if kind == "rollback":
            return self.rollback
        return (
            self.production if ModelStage.parse(target) == ModelStage.PRODUCTION else self.staging
        )


def check_reviewer(reviewer: str, *, requester: str, authors: Iterable[str], label: str) -> None:
    """Four eyes: neither the requester nor an author of the version may approve it."""
    if reviewer.casefold() == requester.casefold():
        raise PolicyError(f"you filed {label}: another reviewer must approve it (four-eyes rule)")
    if reviewer.casefold() in {a.casefold() for a in authors if a}:
        raise PolicyError(
            f"you are an author of the version in {label}: a reviewer who did not write it "
            "must approve it (four-eyes rule)"
        )


# -- is the request still what was approved? ------------------------------------------------


@dataclass(frozen=True)
class RequestFacts:
    """What a request was filed against."""

    label: str
    kind: str  # promote | rollback
    target: ModelStage
    from_stage: ModelStage
    content_sha256: str
    basis_epoch: int  # the template's stage epoch when the request was filed


@dataclass(frozen=True)
class CurrentFacts:
    """The version and its template as they are now (read from MLflow just before a write)."""

    stage: ModelStage | None  # None: the version is gone
    content_sha256: str
    epoch: int


def stale_reason(request: RequestFacts, current: CurrentFacts) -> str | None:
    """Why the request no longer describes the registry, or None while it still does."""
    if current.stage is None:
        return f"{request.label}: the version is no longer in the registry"
    if current.content_sha256 != request.content_sha256:
        return f"{request.label}: the version's content changed since the request was filed"
    if current.epoch != request.basis_epoch:
        return (
            f"{request.label}: the template's stages changed since the request was filed "
            "(another version was promoted or this one was moved)"
        )
    if current.stage != request.from_stage:
        return f"{request.label}: the version is now {current.stage}, not {request.from_stage}"
    return None


def execution_problems(
    request: RequestFacts, current: CurrentFacts, *, approvals: int, required: int
) -> list[str]:
    """Everything that forbids carrying the request out now (empty: go ahead)."""
    problems = []
    reason = stale_reason(request, current)
    if reason:
        problems.append(reason)
    if approvals < required:
        problems.append(
            f"{request.label}: {approvals} valid approval(s) of {required} required "
            "(an approver may have lost the reviewer role)"
        )
    return problems


def check_request_path(kind: str, current: ModelStage, target: ModelStage, label: str) -> None:
    """A promotion follows dev -> staging -> production; a rollback brings back an archived
    version that held production before."""
    if kind == "rollback":
        if target != ModelStage.PRODUCTION:
            raise PolicyError(f"{label}: a rollback moves production only")
        if current == ModelStage.PRODUCTION:
            raise PolicyError(f"{label}: this version is in production already")
        if current != ModelStage.ARCHIVED:
            raise PolicyError(
                f"{label}: only an archived version that held production before can be "
                f"rolled back to (this one is {current}); promote it instead"
            )
        return
    if target not in (ModelStage.STAGING, ModelStage.PRODUCTION):
        raise PolicyError(f"{label}: requests target staging or production, not {target}")
    try:
        needed = check_promotion(current, target, label=label)
    except StageTransitionError as error:
        raise PolicyError(str(error)) from None
    if not needed:
        raise PolicyError(f"{label}: already in {target}")


# -- the metric gate -------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    status: str  # pass | fail | no_data | no_target
    detail: str

    @property
    def failing(self) -> bool:
        return self.status == "fail"


@dataclass(frozen=True)
class MetricObservation:
    """What an experiment measured for a version, and for production beside it.

    Filled by registry_ui.web.experiments.results.observation_for(); ``rate`` is the rate or the
    mean of the experiment's primary metric (``kind``).
    """

    rate: float
    samples: int
    ci_low: float | None = None
    ci_high: float | None = None
    kind: str = "rate"  # rate | mean
    metric: str = "engagement"
    label: str = ""  # the version measured, e.g. "1.2.0"
    experiment: str = ""  # the experiment's key
    target: float | None = None  # the experiment's target; wins over engagement_target
    min_samples: int = 0  # the experiment's own minimum per variant
    control_label: str = ""  # production's version
    control_rate: float | None = None
    control_samples: int | None = None
    difference: float | None = None  # rate - control_rate
    difference_ci: tuple[float, float] | None = None
    p_value: float | None = None  # two-proportion z-test (rate) or Welch's t-test (mean)
    alpha: float = 0.05

    @property
    def significantly_worse(self) -> bool:
        return (
            self.p_value is not None
            and self.p_value < self.alpha
            and self.control_rate is not None
            and self.rate < self.control_rate
        )

    def figures(self) -> str:
        """n, rate, interval and the comparison with production, for reviewers."""
        f = _figure_format(self.kind)
        ci = f" (95% CI {f(self.ci_low)} to {f(self.ci_high)})" if self.ci_low is not None else ""
        label = f"{self.label}: " if self.label else ""
        text = f"{label}{self.metric} {f(self.rate)}{ci}, n={self.samples:,}"
        if self.control_rate is not None:
            text += (
                f"; production {self.control_label or ''} {f(self.control_rate)}, "
                f"n={self.control_samples or 0:,}"
            ).replace("  ", " ")
        if self.difference is not None:
            text += f"; difference {_signed(self.difference, f)}"
            if self.difference_ci is not None:
                low, high = self.difference_ci
                text += f" (95% CI {_signed(low, f)} to {_signed(high, f)})"
        if self.p_value is not None:
            text += f", p={self.p_value:.3g}"
        if self.experiment:
            text += f" [experiment {self.experiment}]"
        return text


def _figure_format(kind: str) -> Callable[[float | None], str]:
    if kind == "rate":
        return lambda v: "?" if v is None else f"{v * 100:.2f}%"
    return lambda v: "?" if v is None else f"{v:.4g}"


def _signed(value: float, f: Callable[[float | None], str]) -> str:
    text = ("+" if value >= 0 else "") + f(value)
    return text[:-1] + " pts" if text.endswith("%") else text  # a difference of two rates


def evaluate_gate(
    metadata: Mapping, observation: MetricObservation | None, *, min_samples: int = 100
) -> GateResult:
    """Does the staging version meet its target, with enough data, and is it not
    significantly worse than production?

    The target is the experiment's when it sets one, else the template's
    ``engagement_target``. Both the version and production need the larger of
    ``min_samples`` and the experiment's own minimum.
    """
    target = metadata.get("engagement_target")
    if observation is not None and observation.target is not None:
        target = observation.target
    if target is None:
        return GateResult("no_target", "the template sets no engagement_target")
    try:
        target = float(target)
    except (TypeError, ValueError):
        return GateResult("no_target", f"engagement_target {target!r} is not a number")
    if observation is None:
        return GateResult("no_data", f"no data: no experiment has measured it (target {target:g})")
    needed = max(min_samples, observation.min_samples)
    short = observation.samples < needed or (
        observation.control_samples is not None and observation.control_samples < needed
    )
    if short:
        return GateResult(
            "no_data",
            f"no data: {needed:,} samples per variant needed; {observation.figures()} "
            f"(target {target:g})",
        )
    measured = observation.ci_low if observation.ci_low is not None else observation.rate
    problems = []
    if measured < target:
        bound = " (its 95% lower bound)" if observation.ci_low is not None else ""
        problems.append(f"below the target {target:g}{bound}")
    if observation.significantly_worse:
        problems.append(
            f"significantly worse than production (p={observation.p_value:.3g} < "
            f"{observation.alpha:g})"
        )
    if problems:
        return GateResult("fail", f"{'; '.join(problems)}: {observation.figures()}")
    verdict = f"meets the target {target:g}"
    if observation.control_rate is not None:
        verdict += ", not significantly worse than production"
    return GateResult("pass", f"{verdict}: {observation.figures()}")


def evaluate_gate_across(
    metadata: Mapping, observations: Sequence[MetricObservation], *, min_samples: int = 100
) -> GateResult:
    """The gate over every experiment that served the version (newest first).

    One failing experiment fails the gate, whatever came after it: stopping an experiment
    that fails and defining a newer, emptier one must not turn "fail" into "no data". With
    no failure, one passing experiment passes; otherwise the newest experiment's verdict
    (no data, no target) stands.
    """
    if not observations:
        return evaluate_gate(metadata, None, min_samples=min_samples)
    results = [
        (observation, evaluate_gate(metadata, observation, min_samples=min_samples))
        for observation in observations
    ]
    if len(results) == 1:
        return results[0][1]
    for wanted in ("fail", "pass"):
        found = [(o, r) for o, r in results if r.status == wanted]
        if found:
            observation, result = found[0]
            others = ", ".join(
                f"{o.experiment}: {r.status.replace('_', ' ')}"
                for o, r in results
                if o is not observation
            )
            return GateResult(
                wanted,
                f"experiment {observation.experiment}: {result.detail} (the gate reads all "
                f"{len(results)} experiments that served this version; the others: {others})",
            )
    return results[0][1]


# -- the dry run of a release ----------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseItem:
    name: str
    version: str
    target: ModelStage


@dataclass(frozen=True)
class VersionState:
    stage: ModelStage
    content_sha256: str
    metadata: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class ItemPlan:
    item: ReleaseItem
    from_stage: ModelStage | None
    replaces: str | None  # the version that leaves the target stage, if any
    changes: tuple[str, ...]
    problems: tuple[str, ...]


def plan_release(
    items: Sequence[ReleaseItem],
    templates: Mapping[str, Mapping[str, VersionState]],
    *,
    open_requests: frozenset[tuple[str, str, str]] = frozenset(),
    checks: Callable[[ReleaseItem, VersionState], Sequence[str]] | None = None,
) -> list[ItemPlan]:
    """What a release would change, template by template, and what stops each item.

    ``templates`` maps a template name to its versions' states; ``open_requests`` holds
    (name, version, target) of requests already open; ``checks`` returns failing checks.
    """
    plans = []
    seen: set[str] = set()
    for item in items:
        label = f"{item.name} {item.version}"
        problems: list[str] = []
        versions = templates.get(item.name)
        state = versions.get(item.version) if versions else None
        if item.name in seen:
            problems.append(f"{label}: a release moves each template once")
        seen.add(item.name)
        if versions is None:
            problems.append(f"{item.name}: no such template")
        elif state is None:
            problems.append(f"{label}: no such version")
        replaces = None
        changes: list[str] = []
        if state is not None:
            try:
                check_request_path("promote", state.stage, item.target, label)
            except PolicyError as error:
                problems.append(str(error))
            replaces = next(
                (v for v, s in versions.items() if s.stage == item.target and v != item.version),
                None,
            )
            changes.append(f"{item.version}: {state.stage} -> {item.target}")
            if replaces:
                changes.append(f"{replaces}: {item.target} -> archived")
            if (item.name, item.version, item.target.value) in open_requests:
                problems.append(f"{label}: a request to move it to {item.target} is open already")
            if checks is not None:
                problems.extend(f"{label}: check failed: {c}" for c in checks(item, state))
        plans.append(
            ItemPlan(
                item=item,
                from_stage=state.stage if state else None,
                replaces=replaces,
                changes=tuple(changes),
                problems=tuple(problems),
            )
        )
    return plans
