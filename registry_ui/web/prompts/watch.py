"""The holder watch: deletions and renames of staging and production versions, seen in seconds.

MLflow 3.17 sends webhooks for versions created, tags set or deleted and aliases moved, but
none when a version or a model is deleted or a model renamed (docs/mlflow-contract.md). The
watch compares, every HOLDER_WATCH_SECONDS, the versions the mirror shows in staging or
production with the versions MLflow tags so (two MLflow searches, whatever the registry's
size), and has every template whose holder is gone synced on its own at once: the sync
marks the version deleted, audits it, flags the template and makes open requests stale.
"""

from __future__ import annotations

from collections.abc import Callable

from registry_ui.prompt_model import get_registry
from registry_ui.web.models import TemplateVersion

_HELD = ("staging", "production")


def watch_stage_holders(send: Callable[[str], object]) -> dict[str, int]:
    """Send a one-template sync for each template whose mirrored holder MLflow lost."""
    tagged = get_registry().gateway.stage_tag_holders()
    held = TemplateVersion.objects.filter(stage__in=_HELD, missing_since__isnull=True)
    gone = sorted(
        {
            name
            for name, registered, number in held.values_list(
                "template__name", "template__registered_model_name", "mlflow_version"
            )
            if (registered, str(number)) not in tagged
        }
    )
    for name in gone:
        send(name)
    return {"holders": held.count(), "templates_synced": len(gone)}
