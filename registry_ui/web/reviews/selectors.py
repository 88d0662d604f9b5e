"""Reads for the review services: the request to decide (locked) and the version it names."""

from __future__ import annotations

from registry_ui.core.policy import PolicyError
from registry_ui.web.models import PromotionRequest, TemplateVersion


def version_row(template_name: str, version: str) -> TemplateVersion:
    try:
        return TemplateVersion.objects.select_related("template").get(
            template__name=template_name, version=version
        )
    except TemplateVersion.DoesNotExist:
        raise PolicyError(
            f"{template_name} {version}: no such version in the mirror (sync the registry if "
            "it was registered outside the dashboard)"
        ) from None


def locked_request(request_id: int) -> PromotionRequest:
    try:
        return (
            PromotionRequest.objects.select_for_update(of=("self",))
            .select_related("template", "version", "requester")
            .get(pk=request_id)
        )
    except PromotionRequest.DoesNotExist:
        raise PolicyError(f"request #{request_id} does not exist") from None
