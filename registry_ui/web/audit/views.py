"""The audit log page and its CSV export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.web import display, permissions
from registry_ui.web.audit import export as csv_export
from registry_ui.web.audit import filters as audit_filters
from registry_ui.web.audit import selectors
from registry_ui.web.models import AuditEvent


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
    export = {k: query[k] for k in audit_filters.FILTERS if k in query}
    return render(
        request,
        "registry_ui/audit/log.html",
        {
            "events": [_event_row(event) for event in events],
            "filters": query,
            "errors": errors,
            "sources": AuditEvent.Source.choices,
            "actions": selectors.audit_actions(),
            "next_url": f"?{urlencode({**query, 'before': next_before})}" if next_before else "",
            "first_url": f"?{urlencode(query)}" if before_seq else "",
            "export_url": f"{reverse('audit_export')}?{urlencode(export)}",
            "may_export": permissions.may_export_audit(request.user),
        },
        status=400 if errors else 200,
    )


def _audit_filters(query) -> tuple[selectors.AuditFilters, dict[str, str]]:
    values, errors = audit_filters.read_filters(query)
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
        "before": display.json_text(event.before) if event.before is not None else "",
        "after": display.json_text(event.after) if event.after is not None else "",
    }


_ACCEPTED = (
    "accepted filters: template=NAME, actor=USERNAME, action=ACTION (or a prefix ending in "
    "'.', e.g. request.), source=dashboard|worker|external|command (one of the audit "
    "sources), since=DATE-OR-TIME (inclusive), until=DATE-OR-TIME "
    "(exclusive; a bare date includes that whole day), in ISO 8601 and UTC unless an offset "
    "is given, e.g. ?template=persona/hook&since=2026-11-01&until=2026-11-30T18:00:00Z"
)


@login_required
@permission_required(permissions.EXPORT_AUDIT, raise_exception=True)
@never_cache
@require_GET
def audit_export(request):
    try:
        filters = _filters(request.GET)
    except ValueError as error:
        return HttpResponseBadRequest(
            f"{error}\n{_ACCEPTED}\n", content_type="text/plain; charset=utf-8"
        )
    response = StreamingHttpResponse(
        csv_export.csv_lines(csv_export.events_for_export(**filters)),
        content_type="text/csv; charset=utf-8",
    )
    filename = f"audit-{timezone.now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _filters(query) -> dict:
    unknown = sorted(set(query) - set(audit_filters.FILTERS))
    if unknown:
        raise ValueError(f"unknown filter {', '.join(unknown)}")
    for key in query:
        if len(query.getlist(key)) > 1:
            raise ValueError(f"{key} was given {len(query.getlist(key))} times: give it once")
    filters, errors = audit_filters.read_filters(query)
    if errors:
        raise ValueError("\n".join(errors.values()))
    return filters
