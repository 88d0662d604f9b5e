"""Saved preview samples: values shown to every reviewer of a version."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone

from registry_ui.core.policy import PolicyError
from registry_ui.core.template import parse_template
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, TemplateVersion, VersionSample
from registry_ui.web.prompts import preview

SAMPLE_NAME = re.compile(r"[\w .-]{1,60}")


class SampleRefused(PolicyError):
    """Values that do not render: the preview says which field is wrong."""

    def __init__(self, message: str, shown: preview.Preview | None = None):
        self.preview = shown
        super().__init__(message)


def sample_save(user, *, version: TemplateVersion, name: str, raw: Mapping[str, str]):
    """Save (or replace) the named sample of a version; it must render."""
    permissions.require_any(user, permissions.AUTHOR_OR_REVIEWER, "saving sample values")
    name = (name or "").strip() or "example"
    if not SAMPLE_NAME.fullmatch(name):
        raise SampleRefused(
            f"sample name {name[:80]!r} is not accepted: use up to 60 letters, digits, spaces, "
            "'.', '-' or '_', e.g. 'long name'"
        )
    parsed = parse_template(version.text)
    fields = preview.preview_fields(parsed)
    shown = preview.render_preview(parsed, fields, raw, settings.INPUT_LIMITS)
    if not shown.ok:
        raise SampleRefused("these values do not render: fix the marked fields first", shown)
    label = f"{version.template.name}@{version.version}"
    with trail.atomic():
        existing = (
            VersionSample.objects.select_for_update().filter(version=version, name=name).first()
        )
        before = {"values": existing.values} if existing else None
        sample, _ = VersionSample.objects.update_or_create(
            version=version,
            name=name,
            defaults={
                "values": shown.raw,
                "saved_by": user,
                "saved_by_username": user.get_username(),
                "saved_at": timezone.now(),
            },
        )
        trail.record(
            actor=user.get_username(),
            action="sample.saved",
            object_type="version_sample",
            object_id=label,
            before=before,
            after={
                "template": version.template.name,
                "version": version.version,
                "name": name,
                "values": shown.raw,
            },
            source=AuditEvent.Source.DASHBOARD,
        )
    return sample
