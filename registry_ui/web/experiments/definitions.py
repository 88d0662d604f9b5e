"""Defining and stopping A/B experiments (authorised and audited here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.experiments import ExperimentConfig, ExperimentConfigError, Variant
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.experiments.signals import experiment_changed
from registry_ui.web.experiments.tasks import publish_experiment
from registry_ui.web.models import (
    AuditEvent,
    Experiment,
    ExperimentVariant,
    NativePrompt,
    ServiceToken,
    Template,
    TemplateVersion,
)


def audit_change(
    actor: str, action: str, object_type: str, object_id: str, after: dict, source: str
):
    trail.record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=None,
        after=after,
        source=source,
    )


@dataclass(frozen=True)
class VariantLine:
    name: str
    version: str
    weight: int


def experiment_define(
    user,
    *,
    template_name: str,
    key: str,
    title: str,
    variants: Sequence[VariantLine],
    metric: str,
    kind: str,
    min_samples: int,
    start_at: datetime,
    stop_at: datetime,
    target: float | None = None,
    hypothesis: str = "",
    reporting_services: Sequence[str] = (),
    source: str = AuditEvent.Source.DASHBOARD,
) -> Experiment:
    """Define an experiment; it is published to MLflow once the transaction commits.

    ``reporting_services``: the names of the service tokens that may report its outcomes
    (no other token may)."""
    permissions.require(user, "define_experiment", "defining an experiment")
    return create_experiment(
        actor=user.get_username(),
        created_by=user,
        template_name=template_name,
        key=key,
        title=title,
        variants=variants,
        metric=metric,
        kind=kind,
        min_samples=min_samples,
        start_at=start_at,
        stop_at=stop_at,
        target=target,
        hypothesis=hypothesis,
        reporting_services=reporting_services,
        source=source,
    )


def create_experiment(
    *,
    actor: str,
    created_by=None,
    template_name: str,
    key: str,
    title: str,
    variants: Sequence[VariantLine],
    metric: str,
    kind: str,
    min_samples: int,
    start_at: datetime,
    stop_at: datetime,
    target: float | None = None,
    hypothesis: str = "",
    reporting_services: Sequence[str] = (),
    source: str = AuditEvent.Source.DASHBOARD,
) -> Experiment:
    """experiment_define without the permission check (the demo loader and tests)."""
    try:
        ExperimentConfig(
            key=key,
            template=template_name,
            variants=tuple(Variant(v.name, v.version, v.weight) for v in variants),
            metric=metric,
            kind=kind,
            start=start_at,
            stop=stop_at,
        )
    except ExperimentConfigError as error:
        raise PolicyError(str(error)) from None
    if min_samples < 1:
        raise PolicyError("minimum sample per variant must be at least 1")
    if target is not None and not math.isfinite(target):
        raise PolicyError("target must be a finite number")
    if kind == "rate" and target is not None and not 0 <= target <= 1:
        raise PolicyError(f"target {target:g}: a rate's target is between 0 and 1, e.g. 0.06")
    with trail.atomic():
        subject, rows = _subject_and_versions(template_name, variants)
        on = (
            {"native_prompt": subject}
            if isinstance(subject, NativePrompt)
            else {"template": subject}
        )
        overlapping = (
            Experiment.objects.filter(
                **on,
                status=Experiment.Status.RUNNING,
                start_at__lt=stop_at,
                stop_at__gt=start_at,
            )
            .values_list("key", flat=True)
            .first()
        )
        if overlapping:
            raise PolicyError(
                f"experiment {overlapping} runs on {template_name} at the same time: stop it "
                "first, or start this one after it ends (one experiment per template at a time)"
            )
        try:
            with transaction.atomic():
                experiment = Experiment.objects.create(
                    **on,
                    key=key,
                    title=title.strip()[:200] or key,
                    hypothesis=hypothesis.strip()[:MAX_TEXT],
                    metric=metric,
                    kind=kind,
                    min_samples=min_samples,
                    target=target,
                    start_at=start_at,
                    stop_at=stop_at,
                    created_by=created_by,
                    created_by_username=actor,
                )
        except IntegrityError:
            raise PolicyError(f"an experiment with key {key!r} exists already") from None
        services = list(
            ServiceToken.objects.filter(name__in=list(reporting_services), revoked_at__isnull=True)
        )
        unknown = sorted(set(reporting_services) - {service.name for service in services})
        if unknown:
            raise PolicyError(
                f"no active service token named {', '.join(map(repr, unknown))}: an admin "
                "creates service tokens"
            )
        experiment.reporting_services.set(services)
        ExperimentVariant.objects.bulk_create(
            ExperimentVariant(
                experiment=experiment,
                name=line.name,
                **{"native_version" if experiment.is_native else "version": rows[line.version]},
                weight=line.weight,
                position=position,
            )
            for position, line in enumerate(variants)
        )
        audit_change(actor, "experiment.defined", "experiment", key, _describe(experiment), source)
        experiment_changed.send(
            Experiment, experiment=experiment, change="defined", actor=actor, source=source
        )
        _publish_after_commit(experiment)
        return experiment


def _subject_and_versions(name: str, variants: Sequence[VariantLine]):
    """The template (locked) or native prompt named, and its rows of the variants' versions
    (semantic versions; a native prompt's MLflow number is accepted as ``v<n>`` too)."""
    template = Template.objects.select_for_update().filter(name=name).first()
    if template is not None:
        rows = {
            row.version: row
            for row in TemplateVersion.objects.filter(
                template=template, version__in=[v.version for v in variants]
            )
        }
        subject = template
    else:
        subject = NativePrompt.objects.select_for_update().filter(name=name).first()
        if subject is None:
            raise PolicyError(
                f"no template or native prompt named {name!r} is in the mirror (sync the "
                "registry if it was registered outside the dashboard)"
            )
        rows = {}
        for row in subject.versions.all():
            rows[row.semver] = row
            rows[f"v{row.number}"] = row
    missing = [v.version for v in variants if v.version not in rows]
    if missing:
        shown = ""
        if isinstance(subject, NativePrompt):
            known = sorted({row.semver for row in rows.values()}, key=_semver_key)
            shown = f": it has {', '.join(known[-10:])}"
        raise PolicyError(f"{name} has no version {', '.join(missing)}{shown}")
    return subject, rows


def _semver_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def experiment_stop(
    user, key: str, *, reason: str, source: str = AuditEvent.Source.DASHBOARD
) -> Experiment:
    """Stop an experiment early: every unit gets the control from then on. Retry-safe."""
    permissions.require(user, "define_experiment", "stopping an experiment")
    reason = (reason or "").strip()
    if not reason:
        raise PolicyError("a reason is required: say why the experiment stops")
    if len(reason) > MAX_TEXT:
        raise PolicyError(f"the reason is {len(reason)} characters long: at most {MAX_TEXT}")
    with trail.atomic():
        try:
            experiment = Experiment.objects.select_for_update().get(key=key)
        except Experiment.DoesNotExist:
            raise PolicyError(f"experiment {key!r} does not exist") from None
        if experiment.status == Experiment.Status.STOPPED:
            return experiment  # a retried click
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.stop_reason = reason
        experiment.save(update_fields=["status", "stopped_at", "stop_reason"])
        audit_change(
            user.get_username(),
            "experiment.stopped",
            "experiment",
            key,
            {"reason": reason},
            source,
        )
        experiment_changed.send(
            Experiment,
            experiment=experiment,
            change="stopped",
            actor=user.get_username(),
            source=source,
        )
        _publish_after_commit(experiment)
        return experiment


def _describe(experiment: Experiment) -> dict:
    return {
        "reporting_services": sorted(experiment.reporting_services.values_list("name", flat=True)),
        "template" if not experiment.is_native else "native_prompt": experiment.subject_name,
        "title": experiment.title,
        "metric": experiment.metric,
        "kind": experiment.kind,
        "min_samples": experiment.min_samples,
        "target": experiment.target,
        "start_at": experiment.start_at.isoformat(),
        "stop_at": experiment.stop_at.isoformat(),
        "variants": [
            {"name": v.name, "version": v.label, "weight": v.weight}
            for v in experiment.variants.select_related("version", "native_version")
        ],
    }


def _publish_after_commit(experiment: Experiment) -> None:
    publish_experiment.delay_on_commit(experiment.pk)
