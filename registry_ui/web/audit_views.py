"""The audit trail's CSV export: streamed, filtered, for holders of export_auditevent."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry_ui.web import audit

_ACCEPTED = (
    "accepted filters: template=NAME, actor=USERNAME, action=ACTION (or a prefix ending in "
    "'.', e.g. request.), source=dashboard|worker|external|command (one of the audit "
    "sources), since=DATE-OR-TIME (inclusive), until=DATE-OR-TIME "
    "(exclusive; a bare date includes that whole day), in ISO 8601 and UTC unless an offset "
    "is given, e.g. ?template=persona/hook&since=2026-11-01&until=2026-11-30T18:00:00Z"
)


@login_required
@permission_required("registry_web.export_auditevent", raise_exception=True)
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
        audit.csv_lines(audit.events_for_export(**filters)),
        content_type="text/csv; charset=utf-8",
    )
    filename = f"audit-{timezone.now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _filters(query) -> dict:
    unknown = sorted(set(query) - set(audit.FILTERS))
    if unknown:
        raise ValueError(f"unknown filter {', '.join(unknown)}")
    for key in query:
        if len(query.getlist(key)) > 1:
            raise ValueError(f"{key} was given {len(query.getlist(key))} times: give it once")
    filters, errors = audit.read_filters(query)
    if errors:
        raise ValueError("\n".join(errors.values()))
    return filters
