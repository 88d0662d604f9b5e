"""Flags on a template: what a reviewer must look at (outside changes, refused writes,
duplicate versions, content that no longer matches its hash). Raised by workers and the
sync, audited once, shown on the template page until a reviewer resolves them."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.names import to_registered_model_name
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, Template, TemplateFlag


def raise_flag(
    template_name: str,
    kind: str,
    message: str,
    *,
    version: str = "",
    actor: str = "registry_ui",
    source: str = AuditEvent.Source.WORKER,
) -> TemplateFlag | None:
    """Open a flag (audited as ``template.flagged``); None if the same one is open already."""
    with trail.atomic():
        template, _ = Template.objects.get_or_create(
            name=template_name,
            defaults={"registered_model_name": to_registered_model_name(template_name)},
        )
        if TemplateFlag.objects.filter(
            template=template, kind=kind, version=version, resolved_at__isnull=True
        ).exists():
            return None
        try:
            with transaction.atomic():
                flag = TemplateFlag.objects.create(
                    template=template, kind=kind, version=version, message=message[:MAX_TEXT]
                )
        except IntegrityError:  # raised meanwhile by another process
            return None
        trail.record(
            actor=actor,
            action="template.flagged",
            object_type="template",
            object_id=template_name,
            before=None,
            after={"kind": kind, "version": version or None, "message": flag.message},
            source=source,
        )
        return flag


def resolve_flag(user, *, flag_id: int) -> TemplateFlag:
    """A reviewer has checked what the flag says: it leaves the template page (audited)."""
    permissions.require(user, "approve_promotion", "resolving a flag")
    with trail.atomic():
        flag = TemplateFlag.objects.select_for_update().select_related("template").get(pk=flag_id)
        if flag.resolved_at is None:
            flag.resolved_at = timezone.now()
            flag.resolved_by = user.get_username()
            flag.save(update_fields=["resolved_at", "resolved_by"])
            trail.record(
                actor=user.get_username(),
                action="template.flag_resolved",
                object_type="template",
                object_id=flag.template.name,
                before={"kind": flag.kind, "version": flag.version or None},
                after={"resolved_by": flag.resolved_by},
                source=AuditEvent.Source.DASHBOARD,
            )
        return flag
