"""The dashboard's pages: a template, a version with its render preview, a diff, the new
version editor, the operations and the audit log.

Pages read the Django mirror through registry_ui.web.selectors and never call MLflow;
writes go through registry_ui.web.dashboard_services. An htmx request gets the fragment it
replaces (``page.html#fragment``, named after its DOM id); every link and form also works
as a plain request.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from registry_ui.core.diff import compare_templates
from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.core.policy import PolicyError
from registry_ui.core.semver import Bump, SemVer
from registry_ui.core.template import TemplateValidationError, parse_template
from registry_ui.web import audit, dashboard_services, preview, selectors
from registry_ui.web.models import AuditEvent, Batch, Stage, TemplateVersion

PREVIEW_PREFIX = "v."  # query parameters of the preview form: v.<variable>=<text>


def _see_other(url: str) -> HttpResponseRedirect:
    """303: the browser follows with a GET, so a reload never re-sends the form."""
    return HttpResponseRedirect(url, status=303)


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


# -- one template ------------------------------------------------------------------------------


@login_required
@require_GET
def template_detail(request, name: str):
    template = selectors.get_template(name)
    versions = selectors.versions_of(template)
    by_stage = {v.stage: v for v in versions if v.stage in (Stage.STAGING, Stage.PRODUCTION)}
    requests = selectors.open_requests(template)
    old, new = selectors.default_comparison(template, versions, requests)
    timeline = timeline_rows(template, versions)
    return render(
        request,
        "registry_ui/dashboard/template.html",
        {
            "template": template,
            "crumbs": selectors.crumbs(template.name),
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
            "may_register": request.user.has_perm("registry_web.register_version"),
        },
    )


# The rows of a template's versions table and timeline, worked out once: the template then only
# looks up keys ({% url %} and the date filter cost more per row than the row's data).


def _version_row(name: str, version: TemplateVersion) -> dict:
    created_iso, created = selectors.moment(version.created_at)
    return {
        "version": version.version,
        "url": selectors.version_url(name, version.version),
        "stage": version.stage,
        "author": version.author or version.registered_by or "unknown",
        "created_iso": created_iso,
        "created": created,
        "variables": version.variables,
    }


def timeline_rows(template, versions: list[TemplateVersion]) -> list[dict]:
    """The lineage as template.html#timeline shows it, newest first."""
    return [_timeline_row(template.name, entry) for entry in selectors.lineage(template, versions)]


def _timeline_row(name: str, entry: selectors.LineageEntry) -> dict:
    at_iso, at = selectors.moment(entry.at)
    return {
        "entry": entry,
        "at_iso": at_iso,
        "at": at,
        "url": selectors.version_url(name, entry.version),
        "request_url": selectors.request_url(entry.request_id) if entry.request_id else "",
    }


def _diff_url(name: str, old: TemplateVersion, new: TemplateVersion, view: str = "") -> str:
    query = {"from": old.version, "to": new.version}
    if view:
        query["view"] = view
    return f"{reverse('template_diff', args=[name])}?{urlencode(query)}"


# -- one version and its render preview --------------------------------------------------------


@login_required
@require_GET
def version_detail(request, name: str, version: str):
    """The version's text and metadata, and the preview: values come as query parameters
    (v.NAME=TEXT), so a preview is a plain GET that changes nothing and can be shared."""
    row = _version(name, version)
    context = _version_context(request, row, _typed_values(request.GET))
    if request.htmx:
        return render(request, "registry_ui/dashboard/version.html#preview", context)
    return render(request, "registry_ui/dashboard/version.html", context)


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
    samples = list(row.samples.order_by("-saved_at", "-id"))
    chosen = None
    if typed is None:
        wanted = request.GET.get("sample")
        chosen = next((s for s in samples if s.name == wanted), None) if wanted else None
        chosen = chosen or (samples[0] if samples else None)
        typed = dict(chosen.values) if chosen else None
    shown = preview.render_preview(parsed, fields, typed) if typed is not None else None
    previous = (
        TemplateVersion.objects.filter(template=row.template)
        .exclude(pk=row.pk)
        .order_by("-major", "-minor", "-patch")
        .filter(_before(row))
        .first()
    )
    return {
        "version": row,
        "template": row.template,
        "crumbs": selectors.crumbs(row.template.name),
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
        "samples": samples,
        "chosen_sample": chosen,
        "may_save": dashboard_services.may_save_samples(request.user),
        "prefix": PREVIEW_PREFIX,
        "diff_url": _diff_url(row.template.name, previous, row) if previous else None,
        "previous": previous,
        **extra,
    }


def _before(row: TemplateVersion) -> Q:
    return (
        Q(major__lt=row.major)
        | Q(major=row.major, minor__lt=row.minor)
        | Q(major=row.major, minor=row.minor, patch__lt=row.patch)
    )


@login_required
@require_POST
def sample_save(request, name: str, version: str):
    row = _version(name, version)
    typed = _typed_values(request.POST) or {}
    status, extra = 200, {}
    try:
        sample = dashboard_services.sample_save(
            request.user, version=row, name=request.POST.get("sample_name", ""), raw=typed
        )
    except dashboard_services.SampleRefused as error:
        status, extra = 400, {"save_error": str(error)}
    else:
        if not request.htmx:
            url = reverse("version_detail", args=[name, version])
            return _see_other(f"{url}?{urlencode({'sample': sample.name})}#preview")
        extra = {"saved": sample}
    context = _version_context(request, row, typed, **extra)
    if request.htmx:
        return render(request, "registry_ui/dashboard/version.html#preview", context, status=status)
    return render(request, "registry_ui/dashboard/version.html", context, status=status)


# -- the diff ----------------------------------------------------------------------------------


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
            old = selectors.version_before(versions, new) if new_number else default_old
        if not errors and old is not None and new is not None:
            return _see_other(_diff_url(template.name, old, new, view))
    compared = {"old": old, "new": new, "comparison": None, "rows": [], "metadata_rows": []}
    if old is not None and new is not None:
        try:
            compared = comparison_context(old, new)
        except TemplateValidationError as error:  # only a hand-edited mirror row could
            errors.append(str(error))
    return render(
        request,
        "registry_ui/dashboard/diff.html",
        {
            "template": template,
            "crumbs": selectors.crumbs(template.name),
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
        {"key": key, "change": "added", "old": None, "new": _json(value)}
        for key, value in diff["added"].items()
    ]
    rows += [
        {"key": key, "change": "removed", "old": _json(value), "new": None}
        for key, value in diff["removed"].items()
    ]
    rows += [
        {"key": key, "change": "changed", "old": _json(pair["old"]), "new": _json(pair["new"])}
        for key, pair in diff["changed"].items()
    ]
    return sorted(rows, key=lambda row: row["key"])


def _json(value) -> str:
    """One line when short, indented when long (shown escaped, in a <pre>)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return (
        text if len(text) <= 60 else json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)
    )


# -- a new version -----------------------------------------------------------------------------

NEW_VERSION = "registry_ui/dashboard/new_version.html"


def _draft(data) -> dashboard_services.Draft:
    return dashboard_services.Draft(
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
        check = dashboard_services.draft_check(draft) if draft.name else None
        return render(
            request,
            NEW_VERSION,
            {"draft": draft, "check": check, "may_register": may_register, "checked": bool(check)},
        )
    draft = _draft(request.POST)
    try:
        batch = dashboard_services.version_file(request.user, draft=draft)
    except dashboard_services.DraftRefused as refused:
        context = {
            "draft": draft,
            "check": refused.check,
            "may_register": may_register,
            "checked": True,
            "refused": True,
        }
        return render(request, NEW_VERSION, context, status=400)
    url = reverse("batch_detail", args=[batch.pk])
    return HttpResponseClientRedirect(url) if request.htmx else _see_other(url)


def _starting_draft(name: str, user):
    """A draft from the template's latest version, with the next patch version suggested;
    the one writing it is its author (the latest version's author wrote the latest)."""
    latest = selectors.latest_version(name) if name else None
    if latest is None:
        return dashboard_services.Draft(name=name, version="1.0.0" if name else "")
    metadata = dict(latest.metadata)
    if "author" in metadata:
        metadata["author"] = user.get_username()
    return dashboard_services.Draft(
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
        "check": dashboard_services.draft_check(draft),
        "checked": True,
        "may_register": request.user.has_perm("registry_web.register_version"),
    }
    if request.htmx:
        return render(request, NEW_VERSION + "#version-check", context)
    return render(request, NEW_VERSION, context)  # the Check button, without JavaScript


# -- operations --------------------------------------------------------------------------------

BATCH_STATUSES = {
    "": "All",
    "running": "Running",
    Batch.Status.FAILED: "Failed",
    Batch.Status.SUCCEEDED: "Succeeded",
}


@login_required
@require_GET
def operation_list(request):
    status = request.GET.get("status", "")
    if status not in BATCH_STATUSES:
        status = ""
    page, rows = selectors.batch_page(request.GET.get("page"), status=status)
    return render(
        request,
        "registry_ui/dashboard/operations.html",
        {
            "page": page,
            "rows": rows,
            "status": status,
            "statuses": BATCH_STATUSES,
            "failed": selectors.failed_operations(),
            "may_retry": dashboard_services.may_retry(request.user),
        },
    )


@login_required
@require_GET
def batch_detail(request, pk: int):
    row, operations = selectors.batch_detail(pk)
    context = {
        "row": row,
        "operations": operations,
        "may_retry": dashboard_services.may_retry(request.user),
    }
    if request.htmx:
        return render(request, "registry_ui/dashboard/batch.html#batch-detail", context)
    return render(request, "registry_ui/dashboard/batch.html", context)


@login_required
@require_GET
def batch_progress(request, pk: int):
    """A batch's progress bar: polled every 2 s while it runs; the finished fragment has no
    trigger, which stops the polling."""
    row, _ = selectors.batch_detail(pk)
    return render(request, "registry_ui/dashboard/_progress.html", {"row": row})


@login_required
@require_POST
def operation_retry(request):
    ids = request.POST.getlist("operation")
    back = request.POST.get("next", "")
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("operation_list")
    try:
        count = dashboard_services.operations_retry(request.user, operation_ids=ids)
    except PolicyError as error:  # PermissionDenied goes on up: Django answers 403
        return render(
            request,
            "registry_ui/dashboard/retry_refused.html",
            {"error": str(error), "back": back},
            status=400,
        )
    separator = "&" if "?" in back else "?"
    url = f"{back}{separator}{urlencode({'retried': count})}"
    return HttpResponseClientRedirect(url) if request.htmx else _see_other(url)


# -- the audit log -----------------------------------------------------------------------------


@login_required
@require_GET
def audit_log(request):
    filters, errors = _audit_filters(request.GET)
    before = request.GET.get("before", "")
    before_seq = int(before) if before.isdigit() else None
    events, next_before = (
        ([], None) if errors else selectors.audit_events(filters, before=before_seq)
    )
    query = {k: v for k, v in request.GET.items() if k != "before" and v}
    export = {k: query[k] for k in audit.FILTERS if k in query}
    return render(
        request,
        "registry_ui/dashboard/audit.html",
        {
            "events": [_event_row(event) for event in events],
            "filters": query,
            "errors": errors,
            "sources": AuditEvent.Source.choices,
            "actions": selectors.audit_actions(),
            "next_url": f"?{urlencode({**query, 'before': next_before})}" if next_before else "",
            "first_url": f"?{urlencode(query)}" if before_seq else "",
            "export_url": f"{reverse('audit_export')}?{urlencode(export)}",
            "may_export": request.user.has_perm("registry_web.export_auditevent"),
        },
        status=400 if errors else 200,
    )


def _audit_filters(query) -> tuple[selectors.AuditFilters, dict[str, str]]:
    values, errors = audit.read_filters(query)
    return selectors.AuditFilters(**values), errors


def _event_row(event: AuditEvent) -> dict:
    template = ""
    if event.object_type in ("template_version", "version_sample") and "@" in event.object_id:
        template = event.object_id.split("@", 1)[0]
    elif isinstance(event.after, dict) and isinstance(event.after.get("template"), str):
        template = event.after["template"]
    try:
        validate_template_name(template)
    except InvalidNameError:
        template = ""  # a release's operation names "release#N": no template page
    return {
        "event": event,
        "template": template,
        "request_id": int(event.object_id)
        if event.object_type == "promotion_request" and event.object_id.isdigit()
        else None,
        "batch_id": int(event.object_id)
        if event.object_type == "batch" and event.object_id.isdigit()
        else None,
        "before": _json(event.before) if event.before is not None else "",
        "after": _json(event.after) if event.after is not None else "",
    }
