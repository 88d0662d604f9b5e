"""Pages of MLflow's native prompts: the list and one prompt (read-only; aliases move through
requests, registry_ui.web.prompts.native)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from registry_ui.core.checks import summarize
from registry_ui.core.diff import line_diff, messages_diff
from registry_ui.core.errors import NotFoundError
from registry_ui.core.messages import side_by_side
from registry_ui.core.native import format_native, is_jinja
from registry_ui.prompt_model import get_registry
from registry_ui.web import display, permissions
from registry_ui.web.checks import native as native_checks
from registry_ui.web.http import see_other
from registry_ui.web.models import AuditEvent, NativeAliasRequest, NativePrompt
from registry_ui.web.prompts import native, selectors, tasks

_MAX_PREVIEW_VALUE = 10_000


@login_required
@require_GET
def native_list(request):
    """Native prompts, a page at a time, those whose name holds ?q= (one query a page)."""
    q = request.GET.get("q", "").strip()[:200]
    page = selectors.native_page(q, request.GET.get("page"))
    rows = [
        {
            "name": p.name,
            "versions": p.version_count,
            "latest": p.latest or "",
            "aliases": sorted(p.aliases.items()),
            "governed": p.governed,
            "outside": p.outside_alias_change,
        }
        for p in page.object_list
    ]
    return render(
        request,
        "registry_ui/prompts/native_list.html",
        {"rows": rows, "page": page, "q": q, "crumbs": display.crumbs("")},
    )


@login_required
@require_POST
def native_request_create(request, name: str):
    """An author asks to move a governed alias to a version (reviewers approve it)."""
    try:
        native.file_alias_request(
            request.user,
            prompt=name,
            version=request.POST.get("version", "").strip(),
            alias=request.POST.get("alias", "").strip(),
            reason=request.POST.get("reason", "").strip(),
            bump_override=request.POST.get("bump_override", ""),
            checks_override=request.POST.get("checks_override", ""),
        )
    except (native.AliasRequestError, NotFoundError, ValueError) as error:
        return _detail_page(request, name, error=str(error), status=400)
    return see_other(f"/native-prompts/{name}#requests-h")


@login_required
@require_POST
def native_request_approve(request, pk: int):
    """A reviewer approves; enough approvals hand the move to the workers."""
    found = NativeAliasRequest.objects.select_related("prompt").filter(pk=pk).first()
    if found is None:
        raise Http404(f"no alias request #{pk}")
    try:
        native.approve_alias_request(request.user, pk, send=tasks.move_native_alias.delay)
    except native.AliasRequestError as error:
        return _detail_page(request, found.prompt.name, error=str(error), status=400)
    return see_other(f"/native-prompts/{found.prompt.name}#requests-h")


@login_required
@require_POST
def native_checks_run(request, name: str):
    """An author or a reviewer runs a version's test cases again (audited)."""
    prompt = NativePrompt.objects.filter(name=name).first()
    if prompt is None:
        raise Http404(f"no native prompt {name!r} in the mirror")
    version = prompt.versions.filter(number=_number_of(request.POST.get("version"))).first()
    if version is None:
        return _detail_page(request, name, error="Choose a version of this prompt.", status=400)
    native_checks.run_on_demand(request.user, version)
    return see_other(f"/native-prompts/{name}?version={version.number}#checks-h")


def _number_of(raw) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


@login_required
@require_GET
def native_detail(request, name: str):
    return _detail_page(request, name)


def _detail_page(request, name: str, *, error: str = "", status: int = 200):
    prompt = NativePrompt.objects.filter(name=name).first()
    if prompt is None:
        raise Http404(f"no native prompt {name!r} in the mirror")
    versions = list(prompt.versions.order_by("number"))
    by_number = {str(v.number): v for v in versions}
    rows = []
    previous = None
    for version in versions:
        rows.append(
            {
                "row": version,
                "aliases": sorted(
                    a for a, n in prompt.aliases.items() if str(n) == str(version.number)
                ),
                "messages": version.template if version.is_chat else None,
                "model_config": json.dumps(version.model_config, indent=2, sort_keys=True)
                if version.model_config
                else "",
                "response_format": json.dumps(version.response_format, indent=2, sort_keys=True)
                if version.response_format is not None
                else "",
                "diff": _diff(previous, version) if previous else None,
            }
        )
        previous = version
    chosen = by_number.get(request.GET.get("version", "")) or (versions[-1] if versions else None)
    preview, preview_error = _preview(chosen, request.GET) if chosen else (None, "")
    return render(
        request,
        "registry_ui/prompts/native_prompt.html",
        {
            "prompt": prompt,
            "rows": list(reversed(rows)),
            "chosen": chosen,
            "preview": preview,
            "preview_error": preview_error,
            "preview_fields": [
                (variable, request.GET.get(f"v_{variable}", "")) for variable in chosen.variables
            ]
            if chosen
            else [],
            "lineage": lineage(prompt.name),
            # The test cases' tag is shown as the test cases, not as a tag.
            "shown_tags": {k: v for k, v in prompt.tags.items() if k != native_checks.CASES_TAG},
            "checks": _checks(chosen) if chosen else None,
            "may_run_checks": permissions.may_run_checks(request.user),
            "accepted": sorted(prompt.governed_aliases.items()),
            "requests": NativeAliasRequest.objects.filter(prompt=prompt)[:20],
            "crumbs": display.crumbs(""),
            "error": error,
            "may_request": prompt.governed and permissions.has(request.user, "request_promotion"),
            "may_approve": permissions.has(request.user, "approve_promotion"),
            "governed_aliases": native.governance().aliases,
        },
        status=status,
    )


def _checks(version) -> dict:
    """The chosen version's test cases: where they are written, the newest stored run."""
    _written, where = native_checks.cases_text(version)
    run = native_checks.latest_run(version)
    results = native_checks.results_of(run)
    return {
        "where": where,
        "tag": native_checks.CASES_TAG,
        "run": run,
        "results": results,
        "summary": summarize(results) if run else "",
    }


def _diff(old, new) -> dict:
    old_messages = old.template if old.is_chat else [{"role": "text", "content": old.template}]
    new_messages = new.template if new.is_chat else [{"role": "text", "content": new.template}]
    return {
        "against": old,
        "changes": native.changes_between(old, new),
        "added": [name for name in new.variables if name not in old.variables],
        "removed": [name for name in old.variables if name not in new.variables],
        "messages": messages_diff(old_messages, new_messages),
        "model_config": side_by_side(old.model_config, new.model_config),
        "response_format": line_diff(
            json.dumps(old.response_format, indent=2, sort_keys=True)
            if old.response_format
            else "",
            json.dumps(new.response_format, indent=2, sort_keys=True)
            if new.response_format
            else "",
        ),
    }


def _preview(version, query) -> tuple[object, str]:
    """The chosen version rendered with MLflow's own rules, from ?v_<name>=... values."""
    values = {
        key[2:]: value[:_MAX_PREVIEW_VALUE]
        for key, value in query.items()
        if key.startswith("v_") and key[2:] in version.variables
    }
    if not values:
        return None, ""
    template = version.template if not version.is_chat else [dict(m) for m in version.template]
    try:
        if is_jinja(template):
            rendered = get_registry().gateway.format_jinja(template, values)
        else:
            rendered = format_native(template, values)
    except Exception as error:
        return None, str(error)
    return rendered, ""


LINEAGE_ENTRIES = 30
# What each event of a native prompt says, in plain words (the audit log has the rest).
LINEAGE_WORDS = {
    "native_prompt.updated": "new versions seen in MLflow",
    "native_prompt.governed": "taken under review",
    "native_prompt.adopted": "adopted: its aliases as they were are the starting state",
    "native_prompt.alias_moved_outside": "an alias was moved outside registry_ui",
    "native_prompt.alias_restored": "moved back to what reviewers accepted",
    "native_alias.requested": "alias move requested",
    "native_alias.approved": "alias move approved",
    "native_alias.moved": "alias moved, as approved",
    "native_alias.failed": "alias move failed",
    "native_prompt.checks_run": "test cases run again",
}


def lineage(name: str) -> list[dict]:
    """The prompt's newest events first: versions seen, adoption, alias requests, approvals
    and moves, outside moves (one indexed query, at most LINEAGE_ENTRIES)."""
    events = AuditEvent.objects.filter(object_type=native.OBJECT, object_id=name).order_by("-seq")[
        :LINEAGE_ENTRIES
    ]
    return [
        {
            "event": event,
            "words": LINEAGE_WORDS.get(event.action, event.action),
            "detail": _detail(event.after),
        }
        for event in events
    ]


def _detail(after) -> str:
    if not isinstance(after, dict):
        return ""
    return "; ".join(
        f"{key}: {_words(value).rstrip('.;')}"  # "reason: Ready.; semver: ..." reads badly
        for key, value in sorted(after.items())
        if value not in (None, "", [], {})
    )[:300]


def _words(value) -> str:
    """A list or mapping of the audit trail as text: "a, b" and "production v1, staging v2"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
    return str(value)
