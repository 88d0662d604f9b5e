"""The dashboard governs PromptModel's promotions (registry_ui.prompt_model.govern_promotions).

Where the dashboard is deployed, ``PromptModel.promote_to_staging()`` and friends file a
promotion request for review instead of moving the stage, as the account
REGISTRY_UI_LIBRARY_USER; a ``break_glass=True`` move is made, audited with its reason and
flagged for reviewers. GOVERN_LIBRARY_PROMOTIONS=false turns the governing off.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from registry_ui.core.policy import PolicyError
from registry_ui.core.stages import ModelStage
from registry_ui.prompt_model import get_registry
from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, PromotionRequest, TemplateFlag
from registry_ui.web.prompts.flags import raise_flag
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import services


class DashboardGovernor:
    def promotion(self, name: str, version: str, target: ModelStage) -> PromotionRequest | None:
        if not settings.GOVERN_LIBRARY_PROMOTIONS:
            return None
        return services.file_request(
            _library_user(),
            template_name=name,
            version=version,
            target=ModelStage.parse(target).value,
            justification="Filed by PromptModel (the library) for review.",
            source=AuditEvent.Source.COMMAND,
        )

    def break_glass(self, name: str, version: str, target: ModelStage, reason: str) -> None:
        actor = settings.LIBRARY_USER or "registry_ui library"
        mirror_template(
            name, get_registry().gateway.list_versions(name), source="command", actor=actor
        )
        trail.record(
            actor=actor,
            action="version.break_glass",
            object_type="template_version",
            object_id=f"{name}@{version}",
            before=None,
            after={"stage": ModelStage.parse(target).value, "reason": reason},
            source=AuditEvent.Source.COMMAND,
        )
        raise_flag(
            name,
            TemplateFlag.Kind.BREAK_GLASS,
            f"{name} {version} was moved to {ModelStage.parse(target)} by {actor} without "
            f"review (break glass): {reason}",
            version=version,
            actor=actor,
            source=AuditEvent.Source.COMMAND,
        )


def _library_user():
    username = settings.LIBRARY_USER
    if not username:
        raise PolicyError(
            "promotions are reviewed in the dashboard: set REGISTRY_UI_LIBRARY_USER to the "
            "account that files the library's requests, file the request in the dashboard, "
            "or pass break_glass=True with a reason"
        )
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise PolicyError(
            f"REGISTRY_UI_LIBRARY_USER={username!r} is not an account of the dashboard"
        ) from None
