"""The template pages: the list, a template, a version, the diff of two versions."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from registry_ui.core.diff import compare_templates
from registry_ui.core.native import published_name
from registry_ui.core.template import TemplateValidationError, parse_template
from registry_ui.web import display, permissions
from registry_ui.web.http import see_other
from registry_ui.web.models import NativePromptVersion, Stage, TemplateFlag, TemplateVersion
from registry_ui.web.prompts import flags, native, preview, samples, selectors


@login_required
@require_GET
def template_list(request):
    """Templates from the mirror: search, filters, folders and pages; an htmx request (search
    as you type) gets only the results fragment."""
    filters, errors = _template_filters(request.GET)
    if errors:
        page, rows = None, []
    else:
        page, rows = selectors.template_list(filters, request.GET.get("page"))
    query = filters.query()
    context = {
        "page": page,
        "rows": rows,
        "filters": filters,
        "errors": errors,
        "query": urlencode(query),
        "filtered": bool(set(query) - {"folder", "sort"}),
        "sorts": selectors.SORTS,
        "stages": Stage.choices,
        "authors": selectors.authors(),
        "folder_crumbs": display.folder_crumbs(filters.folder),
        "subfolders": selectors.subfolders(filters.folder) if not errors else [],
        # Read on every page (one query, a constant count); shown under the first page.
        "native": selectors.native_matches(filters) if not errors else None,
        "native_shown": selectors.NATIVE_IN_TEMPLATE_LIST,
    }
    template = "registry_ui/prompts/template_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#template-results"
    else:
        context["mlflow_problems"] = selectors.open_mlflow_problem_count()
    return render(request, template, context, status=400 if errors else 200)


def _template_filters(query) -> tuple[selectors.TemplateFilters, dict[str, str]]:
    values = {
        key: query.get(key, "").strip()[:200]
        for key in ("q", "stage", "author", "tag", "folder", "sort")
    }
    values["folder"] = values["folder"].strip("/")
    errors = {}
    if values["sort"] not in selectors.SORTS:
        accepted = ", ".join(f"sort={key}" for key in selectors.SORTS if key)
        errors["sort"] = f"sort {values['sort'][:40]!r} is not offered: use {accepted} (or none)"
    if values["stage"] and values["stage"] not in Stage.values:
        errors["stage"] = f"stage {values['stage'][:40]!r} is not one of: " + ", ".join(
            Stage.values
        )
    if values["tag"] and not selectors.TAG.fullmatch(values["tag"]):
        errors["tag"] = (
            "a tag is up to 60 letters, digits, spaces and '.', ':', '-' or '_', e.g. 'onboarding'"
        )
    return selectors.TemplateFilters(**values), errors


PREVIEW_PREFIX = "v."  # query parameters of the preview form: v.<variable>=<text>


def _leaf(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def metadata_pairs(metadata: dict, *, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Sorted (key, text) pairs, not the dict: a key such as "items" would shadow dict.items
    in a template. Text stays as written; anything else is shown as JSON."""
    return sorted(
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in metadata.items()
        if key not in skip
    )


@login_required
@require_GET
def template_detail(request, name: str):
    template = selectors.get_template(name)
    versions = selectors.versions_of(template)
    by_stage = {v.stage: v for v in versions if v.stage in (Stage.STAGING, Stage.PRODUCTION)}
    requests = selectors.open_requests(template)
    old, new = selectors.default_comparison(template, versions, requests)
    timeline = timeline_rows(template, versions)
    may_roll_back = permissions.may_roll_back(request.user)
    return render(
        request,
        "registry_ui/prompts/template.html",
        {
            "template": template,
            "crumbs": display.crumbs(template.name),
            "versions": list(reversed(versions)),
            "version_rows": [_version_row(template.name, v) for v in reversed(versions)],
            "leaf": _leaf(template.name),
            "holders": [
                {
                    "stage": stage,
                    "version": by_stage.get(stage),
                    "metadata": metadata_pairs(by_stage[stage].metadata, skip=("author",))
                    if stage in by_stage
                    else [],
                }
                for stage in (Stage.PRODUCTION, Stage.STAGING)
            ],
            "requests": requests,
            "timeline": timeline,
            "diff_url": _diff_url(template.name, old, new) if old and new else None,
            "may_register": permissions.may_register(request.user),
            "may_request": permissions.may_file(request.user, "promote"),
            "rollback_to": selectors.last_production_before(template, versions)
            if may_roll_back and by_stage.get(Stage.PRODUCTION)
            else None,
            "why_not": _why_not_offered(request.user),
            "flags": selectors.open_flags(template),
            "may_resolve_flags": permissions.has(request.user, "approve_promotion"),
            "publication": native.publication(template, versions),
        },
    )


def _why_not_offered(user) -> str:
    """One line saying which actions this page does not offer the user, and why."""
    if permissions.may_file(user, "promote") and permissions.may_roll_back(user):
        return ""
    if permissions.may_file(user, "promote"):
        return "Rolling production back is for reviewers."
    if permissions.may_roll_back(user):
        return "Requesting a promotion is for authors; as a reviewer you approve them."
    return "Writing versions and requesting promotions is for authors; rolling back, for reviewers."


@login_required
@require_GET
def mlflow_problems(request):
    """Entries in MLflow the sync could not mirror, with the reason (every other is mirrored)."""
    return render(
        request,
        "registry_ui/prompts/mlflow_problems.html",
        {"problems": selectors.open_mlflow_problems(), "crumbs": display.crumbs("")},
    )


@login_required
@require_POST
def flag_resolve(request, pk: int):
    """A reviewer marks a flag as checked; it leaves the template's page (audited)."""
    try:
        flag = flags.resolve_flag(request.user, flag_id=pk)
    except TemplateFlag.DoesNotExist:
        raise Http404(f"no flag #{pk}") from None
    return see_other(display.template_url(flag.template.name))


def _version_row(name: str, version: TemplateVersion) -> dict:
    created_iso, created = display.moment(version.created_at)
    return {
        "version": version.version,
        "url": display.version_url(name, version.version),
        "stage": version.stage,
        "author": version.author or version.registered_by or "unknown",
        "created_iso": created_iso,
        "created": created,
        "variables": version.variables,
    }


def timeline_rows(template, versions: list[TemplateVersion]) -> list[dict]:
    """The lineage as template.html#timeline shows it, newest first; entries close together
    in time show their seconds."""
    entries = selectors.lineage(template, versions)
    close = display.close_together([entry.at for entry in entries])
    return [
        _timeline_row(template.name, entry, seconds=near)
        for entry, near in zip(entries, close, strict=True)
    ]


def _timeline_row(name: str, entry: selectors.LineageEntry, *, seconds: bool = False) -> dict:
    at_iso, at = display.moment(entry.at, seconds=seconds)
    _, exact = display.moment(entry.at, seconds=True)
    return {
        "exact": exact,
        "precision": "seconds" if seconds else "minutes",
        "entry": entry,
        "at_iso": at_iso,
        "at": at,
        "url": display.version_url(name, entry.version),
        "request_url": display.request_url(entry.request_id) if entry.request_id else "",
    }


def _diff_url(name: str, old: TemplateVersion, new: TemplateVersion, view: str = "") -> str:
    query = {"from": old.version, "to": new.version}
    if view:
        query["view"] = view
    return f"{reverse('template_diff', args=[name])}?{urlencode(query)}"


@login_required
@require_GET
def version_detail(request, name: str, version: str):
    """The version's text and metadata, and the preview: values come as query parameters
    (v.NAME=TEXT), so a preview is a plain GET that changes nothing and can be shared."""
    row = _version(name, version)
    context = _version_context(request, row, _typed_values(request.GET))
    if request.htmx:
        return render(request, "registry_ui/prompts/version.html#preview", context)
    return render(request, "registry_ui/prompts/version.html", context)


def _version(name: str, version: str) -> TemplateVersion:
    try:
        return TemplateVersion.objects.select_related("template").get(
            template__name=name, version=version
        )
    except TemplateVersion.DoesNotExist:
        raise Http404(f"no version {version!r} of {name!r} in the mirror") from None


def _typed_values(query) -> dict[str, str] | None:
    values = {
        key[len(PREVIEW_PREFIX) :]: value
        for key, value in query.items()
        if key.startswith(PREVIEW_PREFIX)
    }
    return values or None


def _version_context(request, row: TemplateVersion, typed, **extra) -> dict:
    parsed = parse_template(row.text)
    fields = preview.preview_fields(parsed)
    saved = list(row.samples.order_by("-saved_at", "-id"))
    chosen = None
    if typed is None:
        wanted = request.GET.get("sample")
        chosen = next((s for s in saved if s.name == wanted), None) if wanted else None
        chosen = chosen or (saved[0] if saved else None)
        typed = dict(chosen.values) if chosen else None
    shown = (
        preview.render_preview(parsed, fields, typed, settings.INPUT_LIMITS)
        if typed is not None
        else None
    )
    previous = TemplateVersion.objects.before(row).first()
    chat = row.extra or {}  # (not ``extra``: the keyword arguments below)
    publishing = None
    if native.publishing_chosen(row.template.name, row.metadata):
        publishable, reasons = native.native_form(row)
        target = published_name(row.template.name)
        publishing = {
            "name": target,
            "publishable": publishable,
            "reasons": reasons,
            "number": NativePromptVersion.objects.filter(prompt__name=target, semver=row.version)
            .values_list("number", flat=True)
            .first(),
        }
    return {
        "publishing": publishing,
        "model_config": [
            (key, json.dumps(value))
            for key, value in sorted((chat.get("model_config") or {}).items())
        ],
        "response_format": json.dumps(chat["response_format"], indent=2, sort_keys=True)
        if chat.get("response_format") is not None
        else "",
        "version": row,
        "template": row.template,
        "crumbs": display.crumbs(row.template.name),
        "leaf": _leaf(row.template.name),
        "metadata": metadata_pairs(row.metadata),
        "fields": [
            {
                "field": each,
                "value": (shown.raw.get(each.name, "") if shown else ""),
                "error": (shown.field_errors.get(each.name, "") if shown else ""),
            }
            for each in fields
        ],
        "shown": shown,
        "samples": saved,
        "chosen_sample": chosen,
        "may_save": permissions.may_save_samples(request.user),
        "prefix": PREVIEW_PREFIX,
        "diff_url": _diff_url(row.template.name, previous, row) if previous else None,
        "previous": previous,
        "snippets": use_in_code(row),
        "may_request": permissions.may_file(request.user, "promote"),
        "may_register": permissions.may_register(request.user),
        "may_roll_back_to": permissions.may_roll_back(request.user)
        and row.was_production
        and row.stage != Stage.PRODUCTION
        and not row.tampered_at
        and not row.missing_since,
        **extra,
    }


def use_in_code(row: TemplateVersion) -> list[dict]:
    """How a program loads this version: with PromptModel, with a plain MlflowClient, and
    through the stage's alias as a ``models:/`` URI when the version holds one."""
    name, registered = row.template.name, row.template.registered_model_name
    values = ", ".join(f'{variable}="..."' for variable in row.variables)
    snippets = [
        {
            "id": "code-prompt-model",
            "title": "With PromptModel (checks the content hash, cached)",
            "code": (
                "from registry_ui.prompt_model import PromptModel\n\n"
                f'model = PromptModel.load_from_registry("{name}", version="{row.version}")\n'
                f"text = model.render({values})"
            ),
        },
        {
            "id": "code-mlflow-client",
            "title": "With a plain MlflowClient (no registry_ui installed)",
            "code": (
                "from mlflow import MlflowClient\n\n"
                "client = MlflowClient()  # MLFLOW_TRACKING_URI names the server\n"
                f'version = client.get_model_version("{registered}", "{row.mlflow_version}")\n'
                'template = version.tags["registry_ui.template"]\n'
                f"text = template.format({values})"
            ),
        },
    ]
    if row.stage in (Stage.STAGING, Stage.PRODUCTION):
        snippets.append(
            {
                "id": "code-alias",
                "title": f"Whatever holds {row.stage} (the {row.stage} alias, now {row.version})",
                "code": (
                    "from mlflow import MlflowClient\n\n"
                    f"# models:/{registered}@{row.stage}\n"
                    f'version = MlflowClient().get_model_version_by_alias("{registered}", '
                    f'"{row.stage}")\n'
                    'template = version.tags["registry_ui.template"]'
                ),
            }
        )
    return snippets


@login_required
@require_POST
def sample_save(request, name: str, version: str):
    row = _version(name, version)
    typed = _typed_values(request.POST) or {}
    status, extra = 200, {}
    try:
        sample = samples.sample_save(
            request.user, version=row, name=request.POST.get("sample_name", ""), raw=typed
        )
    except samples.SampleRefused as error:
        status, extra = 400, {"save_error": str(error)}
    else:
        if not request.htmx:
            url = reverse("version_detail", args=[name, version])
            return see_other(f"{url}?{urlencode({'sample': sample.name})}#preview")
        extra = {"saved": sample}
    context = _version_context(request, row, typed, **extra)
    if request.htmx:
        return render(request, "registry_ui/prompts/version.html#preview", context, status=status)
    return render(request, "registry_ui/prompts/version.html", context, status=status)


@login_required
@require_GET
def template_diff(request, name: str):
    """Two versions side by side or inline; by default the version under review against the
    one it would replace. The page always names both versions in its URL to share."""
    template = selectors.get_template(name)
    versions = selectors.versions_of(template)
    by_number = {v.version: v for v in versions}
    view = request.GET.get("view") or "side"
    errors = []
    if view not in ("side", "inline"):
        errors.append(f"view={view!r} is not offered: use view=side or view=inline")
        view = "side"
    old_number, new_number = request.GET.get("from", ""), request.GET.get("to", "")
    old, new = by_number.get(old_number), by_number.get(new_number)
    for label, number, found in (("from", old_number, old), ("to", new_number, new)):
        if number and found is None:
            errors.append(
                f"{label}={number!r}: {template.name} has no such version; pick one below"
            )
    if not old_number or not new_number or errors:
        default_old, default_new = selectors.default_comparison(
            template, versions, selectors.open_requests(template)
        )
        if new is None:
            new = default_new
        if old is None:
            old = TemplateVersion.objects.before(new).first() if new_number else default_old
        if not errors and old is not None and new is not None:
            return see_other(_diff_url(template.name, old, new, view))
    compared = {"old": old, "new": new, "comparison": None, "rows": [], "metadata_rows": []}
    if old is not None and new is not None:
        try:
            compared = comparison_context(old, new)
        except TemplateValidationError as error:  # only a hand-edited mirror row could
            errors.append(str(error))
    return render(
        request,
        "registry_ui/prompts/diff.html",
        {
            "template": template,
            "crumbs": display.crumbs(template.name),
            "leaf": _leaf(template.name),
            "versions": list(reversed(versions)),
            **compared,
            "view": view,
            "errors": errors,
            "share_url": request.build_absolute_uri(_diff_url(template.name, old, new, view))
            if old and new
            else "",
            "other_view_url": _diff_url(
                template.name, old, new, "inline" if view == "side" else "side"
            )
            if old and new
            else "",
        },
        status=400 if errors else 200,
    )


def comparison_context(old: TemplateVersion, new: TemplateVersion) -> dict:
    """What diff.html#diff-body shows of two versions (the diff page and a request's page).

    Raises TemplateValidationError for a text that does not parse (only a hand-edited
    mirror row could hold one).
    """
    comparison = compare_templates(
        old.text,
        new.text,
        old_metadata=old.metadata,
        new_metadata=new.metadata,
        old_version=old.version,
        new_version=new.version,
        old_extra=old.extra,
        new_extra=new.extra,
    )
    return {
        "old": old,
        "new": new,
        "comparison": comparison,
        "rows": _side_rows(comparison),
        "metadata_rows": _metadata_rows(comparison),
    }


def _side_rows(comparison: dict) -> list[dict]:
    """The hunks as rows: equal lines on both sides; a changed hunk as one row with its
    word-level segments (deleted ones on the left, inserted ones on the right)."""
    rows = []
    for hunk in comparison["template_diff"]["lines"]:
        op = hunk["op"]
        if op == "equal":
            for offset, line in enumerate(hunk["old"]):
                rows.append(
                    {
                        "op": "equal",
                        "old_line": hunk["old_start"] + offset,
                        "new_line": hunk["new_start"] + offset,
                        "old": [{"op": "equal", "text": line}],
                        "new": [{"op": "equal", "text": line}],
                    }
                )
            continue
        # A replaced hunk has word-level segments; a deleted or inserted one is whole.
        words = hunk.get("words")
        if words is None:
            words = [{"op": "delete", "text": "\n".join(hunk["old"])}] if hunk["old"] else []
            words += [{"op": "insert", "text": "\n".join(hunk["new"])}] if hunk["new"] else []
        rows.append(
            {
                "op": op,
                "old_line": _line_range(hunk["old_start"], len(hunk["old"])),
                "new_line": _line_range(hunk["new_start"], len(hunk["new"])),
                "old": [w for w in words if w["op"] != "insert"],
                "new": [w for w in words if w["op"] != "delete"],
                "inline": words,
            }
        )
    return rows


def _line_range(start: int, count: int) -> str:
    if count == 0:
        return ""
    return str(start) if count == 1 else f"{start}-{start + count - 1}"


def _metadata_rows(comparison: dict) -> list[dict]:
    diff = comparison["metadata_diff"]
    rows = [
        {"key": key, "change": "added", "old": None, "new": display.json_text(value)}
        for key, value in diff["added"].items()
    ]
    rows += [
        {"key": key, "change": "removed", "old": display.json_text(value), "new": None}
        for key, value in diff["removed"].items()
    ]
    rows += [
        {
            "key": key,
            "change": "changed",
            "old": display.json_text(pair["old"]),
            "new": display.json_text(pair["new"]),
        }
        for key, pair in diff["changed"].items()
    ]
    return sorted(rows, key=lambda row: row["key"])
