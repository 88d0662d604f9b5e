"""Open requests go stale when their template's stages move under them.

The mirror announces every stage move (registry_ui.web.prompts.signals.stages_moved); the
requests filed before it stop counting, and a request is checked again before it is
decided. The policy (registry_ui.core.policy) decides from the facts gathered here."""

from __future__ import annotations

from django.dispatch import receiver

from registry_ui.core.policy import CurrentFacts, RequestFacts, stale_reason
from registry_ui.core.stages import ModelStage
from registry_ui.web.audit import trail
from registry_ui.web.models import PromotionRequest, Template, TemplateVersion
from registry_ui.web.prompts.signals import stages_moved
from registry_ui.web.reviews.selectors import locked_request
from registry_ui.web.reviews.trail import close

Status = PromotionRequest.Status
Kind = PromotionRequest.Kind


@receiver(stages_moved, dispatch_uid="registry_ui.reviews.mark_stale")
def on_stages_moved(sender, *, template: Template, actor: str, source: str, **kwargs) -> None:
    mark_stale(template, actor=actor, source=source)


def mark_stale(template: Template, *, actor: str = "registry_ui", source: str) -> int:
    """Open requests on a template whose stages moved stop counting (the mirror calls this
    inside its transaction, after bumping the template's stage epoch)."""
    stale = list(
        PromotionRequest.objects.select_for_update(of=("self",))
        .filter(template=template, status=Status.OPEN, basis_epoch__lt=template.stage_epoch)
        .select_related("template", "version")
    )
    for request in stale:
        reason = (
            f"{request.label}: the template's stages changed since it was filed (another "
            "version was promoted or this one was moved); file a new request"
        )
        target = request.release if request.release_id else request
        if target.status == Status.OPEN:
            close(target, Status.STALE, reason, actor=actor, source=source)
    return len(stale)


def refresh_staleness(request_id: int) -> None:
    """Close a request as stale if the mirror says its version changed under it."""
    with trail.atomic():
        request = locked_request(request_id)
        if request.status != Status.OPEN or request.kind == Kind.RELEASE:
            return
        reason = stale_reason(request_facts(request), current_facts(request))
        if reason:
            target = request.release if request.release_id else request
            close(target, Status.STALE, reason, actor="registry_ui", source="dashboard")


def request_facts(request: PromotionRequest) -> RequestFacts:
    return RequestFacts(
        label=request.label,
        kind=request.kind,
        target=ModelStage(request.target_stage),
        from_stage=ModelStage(request.from_stage),
        content_sha256=request.content_sha256,
        basis_epoch=request.basis_epoch,
    )


def current_facts(request: PromotionRequest) -> CurrentFacts:
    row = TemplateVersion.objects.filter(pk=request.version_id).first()
    epoch = Template.objects.values_list("stage_epoch", flat=True).get(pk=request.template_id)
    # A version deleted in MLflow, or whose text there no longer matches its hash, is not
    # the content the request was filed for any more.
    intact = row is not None and row.missing_since is None and row.tampered_at is None
    return CurrentFacts(
        stage=ModelStage(row.stage) if row else None,
        content_sha256=row.content_sha256 if intact else "",
        epoch=epoch,
    )
