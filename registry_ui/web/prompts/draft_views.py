"""The new-version editor: checked as the author types, then filed as a batch."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from registry_ui.core.semver import Bump, SemVer
from registry_ui.web.http import after_form
from registry_ui.web.prompts import drafts, selectors

NEW_VERSION = "registry_ui/prompts/new_version.html"


def _draft(data) -> drafts.Draft:
    return drafts.Draft(
        name=data.get("name", "").strip(),
        version=data.get("version", "").strip(),
        template=data.get("template", "").replace("\r\n", "\n"),
        metadata=data.get("metadata", "").replace("\r\n", "\n") or "{}",
        reason=data.get("reason", ""),
    )


@login_required
@require_http_methods(["GET", "POST"])
def version_create(request):
    may_register = request.user.has_perm("registry_web.register_version")
    if request.method == "GET":
        draft = _starting_draft(request.GET.get("template", "").strip(), request.user)
        check = drafts.draft_check(draft) if draft.name else None
        return render(
            request,
            NEW_VERSION,
            {"draft": draft, "check": check, "may_register": may_register, "checked": bool(check)},
        )
    draft = _draft(request.POST)
    try:
        batch = drafts.version_file(request.user, draft=draft)
    except drafts.DraftRefused as refused:
        context = {
            "draft": draft,
            "check": refused.check,
            "may_register": may_register,
            "checked": True,
            "refused": True,
        }
        return render(request, NEW_VERSION, context, status=400)
    url = reverse("batch_detail", args=[batch.pk])
    return after_form(request, url)


def _starting_draft(name: str, user):
    """A draft from the template's latest version, with the next patch version suggested;
    the one writing it is its author (the latest version's author wrote the latest)."""
    latest = selectors.latest_version(name) if name else None
    if latest is None:
        return drafts.Draft(name=name, version="1.0.0" if name else "")
    metadata = dict(latest.metadata)
    if "author" in metadata:
        metadata["author"] = user.get_username()
    return drafts.Draft(
        name=name,
        version=str(SemVer.parse(latest.version).bumped(Bump.PATCH)),
        template=latest.text,
        metadata=json.dumps(metadata, ensure_ascii=False, indent=2),
    )


@login_required
@require_POST
def version_validate(request):
    """Live validation of the editor: checks the draft against the mirror, files nothing."""
    draft = _draft(request.POST)
    context = {
        "draft": draft,
        "check": drafts.draft_check(draft),
        "checked": True,
        "may_register": request.user.has_perm("registry_web.register_version"),
    }
    if request.htmx:
        return render(request, NEW_VERSION + "#version-check", context)
    return render(request, NEW_VERSION, context)  # the Check button, without JavaScript
