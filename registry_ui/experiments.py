"""Runtime assignment for A/B experiments: which version of a template a unit gets.

Usable in any Python process without Django, beside PromptModel:

    from registry_ui.experiments import choose_variant

    assignment = choose_variant("hook-cta-2026-11", user_id)
    model = assignment.load()            # the PromptModel of the unit's version (cached)
    text = model.render(hook_text=..., cta=...)
    # ... later, report the outcome to POST /api/v1/outcomes with
    # experiment=assignment.experiment, variant=assignment.variant, unit_id=user_id

The dashboard publishes each experiment's configuration as a tag of the template's
registered model (``registry_ui.experiment.<key>``, JSON); it is read from MLflow once per
cache TTL (REGISTRY_UI_CACHE_TTL, 30 s by default) with TemplateRegistry's cache, so a hit
makes no network call. The same unit always gets the same variant (registry_ui.core.
experiments.bucket); outside the experiment's window, or once it is stopped, every unit
gets the first variant (the control) with ``in_experiment`` False: report no outcome then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from registry_ui.core.errors import NotFoundError
from registry_ui.core.experiments import ExperimentConfig, Variant

__all__ = ["Assignment", "ExperimentConfig", "choose_variant", "load_experiment"]


@dataclass(frozen=True)
class Assignment:
    experiment: str
    template: str
    variant: str
    version: str  # the template's semantic version for this unit
    in_experiment: bool  # False outside the window or once stopped: report no outcome

    def load(self):
        """The PromptModel of this unit's version (from PromptModel's cache)."""
        from registry_ui.prompt_model import PromptModel

        return PromptModel.load_from_registry(self.template, version=self.version)


def load_experiment(key: str, *, template: str | None = None) -> ExperimentConfig:
    """An experiment's published configuration, cached like PromptModel.load_from_registry.

    ``template`` (its template's name) saves a search: the registered model is read directly.
    """
    from registry_ui.prompt_model import get_registry

    registry = get_registry()

    def fetch() -> ExperimentConfig:
        text = registry.gateway.get_experiment_config(key, template)
        if text is None:
            raise NotFoundError(
                f"experiment {key!r} is not published in the registry (define it on the "
                "dashboard's Experiments page)"
            )
        return ExperimentConfig.from_json(text)

    return registry.cached((template, "experiment", key), fetch)


def choose_variant(
    experiment: str | ExperimentConfig,
    unit_id: str,
    *,
    template: str | None = None,
    now: datetime | None = None,
) -> Assignment:
    """The variant of ``unit_id`` (a user, session or request id): the same every time."""
    config = (
        experiment
        if isinstance(experiment, ExperimentConfig)
        else load_experiment(experiment, template=template)
    )
    live = config.is_live(now or datetime.now(UTC))
    variant: Variant = config.assign(str(unit_id)) if live else config.control
    return Assignment(
        experiment=config.key,
        template=config.template,
        variant=variant.name,
        version=variant.version,
        in_experiment=live,
    )
