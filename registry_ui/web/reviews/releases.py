"""Releases: many moves requested, approved and carried out as one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError

from registry_ui.core.policy import ItemPlan, PolicyError, ReleaseItem, VersionState, plan_release
from registry_ui.core.stages import ModelStage
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.checks import services as version_checks
from registry_ui.web.models import AuditEvent, PromotionRequest, Template, TemplateVersion
from registry_ui.web.reviews.selectors import version_row
from registry_ui.web.reviews.services import approval_policy, authors_field, clean_text, gate_for
from registry_ui.web.reviews.trail import announce, audit_request, describe

Kind = PromotionRequest.Kind
MAX_LINES = 100  # moves in one release, on the page and through the API


@dataclass(frozen=True)
class ReleaseLine:
    template: str
    version: str
    target: str


def dry_run(lines: Sequence[ReleaseLine]) -> list[ItemPlan]:
    """What a release would change for each template and what stops each item."""
    items = []
    for line in lines:
        try:
            target = ModelStage.parse(line.target)
        except ValueError as error:
            raise PolicyError(f"{line.template} {line.version}: {error}") from None
        items.append(ReleaseItem(line.template, line.version, target))
    names = {item.name for item in items}
    states: dict[str, dict[str, VersionState]] = {}
    for row in TemplateVersion.objects.filter(template__name__in=names).select_related("template"):
        states.setdefault(row.template.name, {})[row.version] = VersionState(
            ModelStage(row.stage), row.content_sha256, row.metadata
        )
    open_requests = frozenset(
        PromotionRequest.objects.filter(
            template__name__in=names, status__in=PromotionRequest.ACTIVE
        ).values_list("template__name", "version__version", "target_stage")
    )
    return plan_release(items, states, open_requests=open_requests, checks=_release_checks)


def _release_checks(item: ReleaseItem, state: VersionState) -> list[str]:
    row = TemplateVersion.objects.get(template__name=item.name, version=item.version)
    checks = version_checks.snapshot(row, actor="registry_ui", store=False)
    found = [f"test cases: {checks['detail']}"] if checks["status"] == "fail" else []
    if item.target != ModelStage.PRODUCTION:
        return found
    gate = gate_for(row)
    return [*found, f"metric gate: {gate.detail}"] if gate.failing else found


def file_release(
    user,
    *,
    lines: Sequence[ReleaseLine],
    justification: str,
    source: str = AuditEvent.Source.DASHBOARD,
) -> PromotionRequest:
    """Request many moves as one release, approved once; refused if the dry run finds problems."""
    permissions.require(user, "request_promotion", "requesting a release")
    justification = clean_text(justification, "a justification", required=True)
    if not lines:
        raise PolicyError("a release needs at least one version")
    with trail.atomic():
        plans = dry_run(lines)
        problems = [p for plan in plans for p in plan.problems]
        if problems:
            raise PolicyError("the release cannot be requested: " + "; ".join(problems))
        policy = approval_policy()
        rows = [version_row(p.item.name, p.item.version) for p in plans]
        templates = {
            t.pk: t
            for t in Template.objects.select_for_update().filter(
                pk__in=[r.template_id for r in rows]
            )
        }
        release = PromotionRequest.objects.create(
            kind=Kind.RELEASE,
            requester=user,
            justification=justification,
            version_authors=authors_field(rows),
            required_approvals=max(policy.required("promote", p.item.target) for p in plans),
            gate={},
        )
        try:
            with trail.atomic():
                for plan, row in zip(plans, rows, strict=True):
                    template = templates[row.template_id]
                    gate = gate_for(row) if plan.item.target == ModelStage.PRODUCTION else None
                    PromotionRequest.objects.create(
                        kind=Kind.PROMOTE,
                        release=release,
                        template=template,
                        version=row,
                        content_sha256=row.content_sha256,
                        from_stage=row.stage,
                        target_stage=plan.item.target.value,
                        basis_epoch=template.stage_epoch,
                        requester=user,
                        version_authors=authors_field([row]),
                        justification=justification,
                        required_approvals=release.required_approvals,
                        gate={"status": gate.status, "detail": gate.detail} if gate else {},
                        checks=version_checks.snapshot(row, actor=user.get_username()),
                    )
        except IntegrityError:
            raise PolicyError("a version in the release has an open request already") from None
        audit_request(
            user.get_username(),
            "release.filed",
            release,
            {**describe(release), "justification": justification},
            source,
        )
        announce(release, "filed")
        return release
