"""An experiment's configuration, published to MLflow for the runtime."""

from __future__ import annotations

from django.utils import timezone

from registry_ui.core.errors import RegistryRejectedError, RegistryUnavailableError
from registry_ui.core.experiments import ExperimentConfig, Variant
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.redact import redact
from registry_ui.prompt_model import get_registry
from registry_ui.web.models import Experiment


def config_of(experiment: Experiment) -> ExperimentConfig:
    variants = experiment.variants.select_related("version", "native_version").order_by("position")
    return ExperimentConfig(
        key=experiment.key,
        template=experiment.subject_name,
        variants=tuple(Variant(v.name, v.label, v.weight) for v in variants),
        metric=experiment.metric,
        kind=experiment.kind,
        status=experiment.status,
        start=experiment.start_at,
        stop=experiment.stop_at,
    )


def publish(experiment_id: int) -> None:
    """Write the experiment's current configuration to its template's registered model (a
    native prompt's: a tag of the prompt).

    Idempotent: it always writes what the database says now. RegistryUnavailableError
    propagates so the task retries; a refusal is kept on the experiment for its page.
    """
    experiment = Experiment.objects.select_related("template", "native_prompt").get(
        pk=experiment_id
    )
    config = config_of(experiment)
    registry = get_registry()
    try:
        registry.gateway.set_experiment_config(
            config.template, config.key, config.to_json(), native=experiment.is_native
        )
    except RegistryUnavailableError:
        raise
    except RegistryRejectedError as error:
        # Shown on the experiment's page: MLflow's errors may quote its address, password too.
        Experiment.objects.filter(pk=experiment_id).update(publish_error=redact(error)[:MAX_TEXT])
        return
    registry.invalidate(config.template)
    Experiment.objects.filter(pk=experiment_id).update(
        published_at=timezone.now(), publish_error=""
    )
