"""Reads for the review services and pages: the request to decide (locked), the version it
names, and the versions production may be rolled back to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from registry_ui.core.policy import PolicyError
from registry_ui.web.audit.history import production_history
from registry_ui.web.models import PromotionRequest, TemplateVersion
from registry_ui.web.models.prompts import NEWEST_FIRST


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


@dataclass(frozen=True)
class RollbackChoice:
    """A version production may go back to, with when it held production before."""

    version: TemplateVersion
    since: datetime | None  # the start of its latest period in production
    until: datetime | None  # when that period ended
    periods: int  # how many times it held production (from the audit trail)

    @property
    def served(self) -> timedelta | None:
        if self.since is None or self.until is None:
            return None
        return self.until - self.since


def rollback_templates() -> list[str]:
    """The names of the templates with a version that held production and is out of it now."""
    return list(
        TemplateVersion.objects.filter(was_production=True)
        .exclude(stage="production")
        .order_by("template__name")
        .values_list("template__name", flat=True)
        .distinct()
    )


def rollback_choices(template_name: str) -> list[RollbackChoice]:
    """The versions of this template production may go back to: those that held it before
    and are out of it now, the one that left production last first (the audit trail's
    periods; a version the trail has no period for, e.g. from before the trail, goes last,
    newest version first). Two queries."""
    rows = list(
        TemplateVersion.objects.filter(template__name=template_name, was_production=True)
        .exclude(stage="production")
        .select_related("template")
        .order_by(*NEWEST_FIRST)
    )
    if not rows:
        return []
    periods: dict[str, list[dict]] = {}
    for period in production_history(template_name):
        periods.setdefault(period["version"], []).append(period)
    choices = []
    for row in rows:
        held = periods.get(row.version, [])
        last = held[-1] if held else None
        choices.append(
            RollbackChoice(
                version=row,
                since=last["since"] if last else None,
                until=last["until"] if last else None,
                periods=len(held),
            )
        )
    # Stable sort: versions without a recorded period keep their newest-first order, last.
    choices.sort(
        key=lambda c: (c.until is not None, c.until or datetime.min.replace(tzinfo=UTC)),
        reverse=True,
    )
    return choices
