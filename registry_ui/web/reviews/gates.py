"""The metric gate of open production requests, evaluated again when an experiment changes.

The experiments domain announces every experiment defined or stopped
(registry_ui.web.experiments.signals.experiment_changed). Each open production request on a
version the experiment serves gets its gate evaluated again inside that transaction, and
the audit trail records it (cause, gate before and after) whether or not the verdict moved:
an analyst's change that touches a request under review is always on the record. Approving
evaluates the gate once more (services.approve), so outcomes counted since are read too.
"""

from __future__ import annotations

from django.dispatch import receiver

from registry_ui.core.stages import ModelStage
from registry_ui.web.experiments.signals import experiment_changed
from registry_ui.web.models import Experiment, PromotionRequest
from registry_ui.web.reviews.services import refresh_gate

Status = PromotionRequest.Status


@receiver(experiment_changed, dispatch_uid="registry_ui.reviews.refresh_gates")
def on_experiment_changed(
    sender, *, experiment: Experiment, change: str, actor: str, source: str, **kwargs
) -> int:
    versions = experiment.variants.values_list("version_id", flat=True)
    affected = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .filter(
            status=Status.OPEN,
            target_stage=ModelStage.PRODUCTION.value,
            version_id__in=list(versions),
        )
        .select_related("version", "template")
        .order_by("pk")
    )
    count = 0
    for request in affected:
        refresh_gate(
            request,
            actor=actor,
            cause=f"experiment {experiment.key} {change}",
            source=source,
            always_audit=True,
        )
        count += 1
    return count
