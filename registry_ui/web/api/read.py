"""Read endpoints (scope ``read``): templates, versions, diffs, renders, requests,
batches and the audit trail, from the dashboard's mirror (never MLflow), through the
domains' selectors. Each answers in a fixed number of queries whatever the page holds
(tests/web/api/test_read.py counts them)."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from django.urls import reverse
from ninja import Field, Path, Query, Router, Schema

from registry_ui.core.diff import compare_templates
from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.core.template import (
    TemplateRenderError,
    TemplateValidationError,
    parse_template,
)
from registry_ui.web import permissions
from registry_ui.web.api.auth import need
from registry_ui.web.api.problems import READ, ApiProblem
from registry_ui.web.api.schemas import (
    AuditPage,
    BatchDetail,
    BatchPage,
    DiffOut,
    ExperimentOut,
    RenderIn,
    RenderOut,
    RequestDetail,
    RequestPage,
    TemplateDetail,
    TemplatePage,
    VersionDetail,
)
from registry_ui.web.audit import export as audit_export
from registry_ui.web.audit import filters as audit_filters
from registry_ui.web.audit import selectors as audit_selectors
from registry_ui.web.checks import services as checks
from registry_ui.web.experiments import results as experiment_results
from registry_ui.web.models import (
    Approval,
    AuditEvent,
    Batch,
    Experiment,
    Operation,
    PromotionRequest,
    RequestComment,
    Stage,
    TemplateVersion,
)
from registry_ui.web.prompts import selectors as prompt_selectors

router = Router(tags=["read"])
PER_PAGE = 50
MAX_PAGE = 1_000_000


def bad_query(field: str, message: str, accepted: str) -> ApiProblem:
    return ApiProblem(
        400,
        "bad-query",
        "Bad query parameter",
        f"{field}: {message}",
        errors=[{"field": field, "message": message, "accepted": accepted}],
    )


def not_found(detail: str) -> ApiProblem:
    return ApiProblem(404, "not-found", "Not found", detail)


def template_name(name: str) -> str:
    try:
        return validate_template_name(name)
    except InvalidNameError as error:
        raise bad_query("name", str(error), "a template name such as team/feature/prompt") from None


def page_number(page: int) -> int:
    if not 1 <= page <= MAX_PAGE:
        raise bad_query("page", f"{page} is out of range", f"1 to {MAX_PAGE}")
    return page


def page_fields(page) -> dict:
    return {
        "count": page.paginator.count,
        "page": page.number,
        "pages": page.paginator.num_pages,
        "next_page": page.next_page_number() if page.has_next() else None,
    }


# -- templates ----------------------------------------------------------------------------


def choice(values) -> Any:
    """A query parameter taking one of these values (or none: "")."""
    return Literal[("", *values)]


PageNumber = Field(1, ge=1, le=MAX_PAGE)
# A row's number in a path: /requests/{pk}.
Id = Annotated[int, Path(ge=1, le=2**62)]


class TemplateQuery(Schema):
    q: str = Field("", max_length=200)
    stage: choice(Stage.values) = ""  # type: ignore[valid-type]
    author: str = Field("", max_length=200)
    tag: str = Field("", max_length=60)
    folder: str = Field("", max_length=200)
    page: int = PageNumber


@router.get("/templates", response={200: TemplatePage, **READ}, url_name="api_templates")
def templates(request, query: Query[TemplateQuery]):
    """Templates (50 a page, by name): search by name (``q``), ``folder``, ``stage``,
    ``author``, ``tag``; each with its stage holders and open requests."""
    need(request, "read")
    values = {k: getattr(query, k).strip()[:200] for k in ("q", "stage", "author", "tag")}
    values["folder"] = query.folder.strip().strip("/")[:200]
    if values["stage"] and values["stage"] not in Stage.values:
        raise bad_query(
            "stage", f"{values['stage'][:40]!r} is not a stage", ", ".join(Stage.values)
        )
    if values["tag"] and not prompt_selectors.TAG.fullmatch(values["tag"]):
        raise bad_query("tag", "not a tag", "letters, digits, spaces and . : - (at most 60)")
    filters = prompt_selectors.TemplateFilters(**values)
    page, rows = prompt_selectors.template_list(filters, page_number(query.page))
    if query.page > page.paginator.num_pages and page.paginator.count:
        raise bad_query(
            "page", f"{query.page} is past the last page", f"1 to {page.paginator.num_pages}"
        )
    items = [
        {
            "name": row.template.name,
            "version_count": row.version_count,
            "production": row.production.version if row.production else None,
            "staging": row.staging.version if row.staging else None,
            "newest_dev": row.newest_dev.version if row.newest_dev else None,
            "latest": row.latest.version if row.latest else None,
            "tags": prompt_selectors.version_tags(row.latest),
            "pending": [_brief(r) for r in row.pending],
        }
        for row in rows
    ]
    return {**page_fields(page), "items": items}


def _brief(request: PromotionRequest) -> dict:
    return {
        "id": request.pk,
        "status": request.status,
        "target_stage": request.target_stage,
        "version": request.version.version if request.version_id else "",
    }


def _version_item(row: TemplateVersion) -> dict:
    return {
        "version": row.version,
        "stage": row.stage,
        "author": row.author,
        "registered_by": row.registered_by,
        "content_sha256": row.content_sha256,
        "created_at": row.created_at,
        "missing": row.missing_since is not None,
        "tampered": row.tampered_at is not None,
    }


@router.get(
    "/templates/{path:name}/-/versions/{version}",
    response={200: VersionDetail, **READ},
    url_name="api_version",
)
def version(request, name: str, version: str):
    """One version: text, metadata, variables, content hash, stage, its latest check run."""
    need(request, "read")
    row = _version_row(template_name(name), version)
    run = checks.latest_run(row)
    return {
        **_version_item(row),
        "template": row.template.name,
        "text": row.text,
        "variables": list(row.variables),
        "metadata": row.metadata,
        "checks": (
            {
                "passed": run.passed,
                "trigger": run.trigger,
                "at": run.created_at,
                "results": run.results,
            }
            if run
            else None
        ),
    }


def _version_row(name: str, version: str) -> TemplateVersion:
    try:
        return TemplateVersion.objects.select_related("template").get(
            template__name=name, version=version
        )
    except TemplateVersion.DoesNotExist:
        raise not_found(f"no version {version[:40]!r} of {name!r} in the mirror") from None


@router.post(
    "/templates/{path:name}/-/versions/{version}/render",
    response={200: RenderOut, **READ},
    url_name="api_render",
)
def render(request, name: str, version: str, body: RenderIn):
    """The version's text rendered with the given values (changes nothing)."""
    need(request, "read")
    row = _version_row(template_name(name), version)
    try:
        text = parse_template(row.text).render_bounded(body.values, settings.INPUT_LIMITS)
    except TemplateRenderError as error:
        field = getattr(error, "field", None) or ",".join(getattr(error, "missing", ()))
        raise ApiProblem(
            422,
            "render-failed",
            "The values do not render",
            str(error),
            errors=[{"field": f"values.{field}" if field else "values", "message": str(error)}],
        ) from None
    return {"text": text}


@router.get("/templates/{path:name}/-/diff", response={200: DiffOut, **READ}, url_name="api_diff")
def diff(
    request, name: str, old: str = Query(..., alias="from"), new: str = Query(..., alias="to")
):
    """The comparison the diff page shows: lines and words, variables added and removed,
    fields changed, metadata, and the bump the change needs."""
    need(request, "read")
    name = template_name(name)
    rows = {
        r.version: r
        for r in TemplateVersion.objects.filter(template__name=name, version__in=[old, new])
    }
    for label, number in (("from", old), ("to", new)):
        if number not in rows:
            raise not_found(f"{label}={number[:40]!r}: {name} has no such version in the mirror")
    first, second = rows[old], rows[new]
    try:
        comparison = compare_templates(
            first.text,
            second.text,
            old_metadata=first.metadata,
            new_metadata=second.metadata,
            old_version=first.version,
            new_version=second.version,
            old_extra=first.extra,
            new_extra=second.extra,
        )
    except TemplateValidationError as error:  # only a hand-edited mirror row could
        raise ApiProblem(422, "unreadable-template", "A text does not parse", str(error)) from None
    return {"template": name, "old": old, "new": new, **comparison}


@router.get(
    "/templates/{path:name}", response={200: TemplateDetail, **READ}, url_name="api_template"
)
def template(request, name: str):
    """A template: its versions (newest first, without texts), stage holders, open requests."""
    need(request, "read")
    name = template_name(name)
    try:
        row = prompt_selectors.get_template(name)
    except Exception:  # Http404
        raise not_found(f"no template {name!r} in the mirror") from None
    versions = prompt_selectors.versions_of(row)[::-1]  # newest first
    holders = {v.stage: v.version for v in versions if v.stage in (Stage.PRODUCTION, Stage.STAGING)}
    requests = PromotionRequest.objects.filter(
        template=row, status__in=PromotionRequest.ACTIVE
    ).select_related("version")
    return {
        "name": row.name,
        "production": holders.get(Stage.PRODUCTION),
        "staging": holders.get(Stage.STAGING),
        "versions": [_version_item(v) for v in versions],
        "open_requests": [_brief(r) for r in requests.order_by("created_at", "id")],
    }


# -- requests ----------------------------------------------------------------------------


class RequestQuery(Schema):
    status: choice(PromotionRequest.Status.values) = ""  # type: ignore[valid-type]
    template: str = Field("", max_length=200)
    kind: choice(PromotionRequest.Kind.values) = ""  # type: ignore[valid-type]
    page: int = PageNumber


def _request_item(r: PromotionRequest) -> dict:
    return {
        "id": r.pk,
        "kind": r.kind,
        "status": r.status,
        "template": r.template.name if r.template_id else None,
        "version": r.version.version if r.version_id else None,
        "from_stage": r.from_stage,
        "target_stage": r.target_stage,
        "requester": r.requester.get_username(),
        "required_approvals": r.required_approvals,
        "created_at": r.created_at,
        "decided_at": r.decided_at,
        "finished_at": r.finished_at,
        "outcome": r.outcome,
    }


@router.get("/requests", response={200: RequestPage, **READ}, url_name="api_requests")
def requests(request, query: Query[RequestQuery]):
    """Promotion, rollback and release requests, newest first (50 a page)."""
    need(request, "read")
    found = PromotionRequest.objects.select_related("template", "version", "requester")
    if query.status:
        if query.status not in PromotionRequest.Status.values:
            raise bad_query(
                "status",
                f"{query.status[:40]!r} is not a status",
                ", ".join(PromotionRequest.Status.values),
            )
        found = found.filter(status=query.status)
    if query.kind:
        if query.kind not in PromotionRequest.Kind.values:
            raise bad_query(
                "kind",
                f"{query.kind[:40]!r} is not a kind",
                ", ".join(PromotionRequest.Kind.values),
            )
        found = found.filter(kind=query.kind)
    if query.template:
        found = found.filter(template__name=template_name(query.template))
    page = Paginator(found.order_by("-created_at", "-id"), PER_PAGE).get_page(
        page_number(query.page)
    )
    return {**page_fields(page), "items": [_request_item(r) for r in page.object_list]}


def request_detail(pk: int) -> dict:
    try:
        r = (
            PromotionRequest.objects.select_related("template", "version", "requester", "operation")
            .prefetch_related(
                Prefetch(
                    "approvals",
                    Approval.objects.select_related("reviewer").order_by("created_at", "id"),
                ),
                Prefetch("comments", RequestComment.objects.order_by("created_at", "id")),
            )
            .get(pk=pk)
        )
    except PromotionRequest.DoesNotExist:
        raise not_found(f"request #{pk} does not exist") from None
    approvals = [
        {
            "reviewer": a.reviewer_username,
            "comment": a.comment,
            "at": a.created_at,
            "valid": a.reviewer.is_active and permissions.may_review(a.reviewer),
        }
        for a in r.approvals.all()
    ]
    operation = getattr(r, "operation", None)
    items = (
        r.items.select_related("template", "version", "requester").order_by("pk")
        if r.kind == PromotionRequest.Kind.RELEASE
        else ()
    )
    return {
        **_request_item(r),
        "justification": r.justification,
        "items": [_request_item(item) for item in items],
        "approvals": approvals,
        "valid_approvals": sum(a["valid"] for a in approvals),
        "comments": [
            {"author": c.author_username, "kind": c.kind, "text": c.text, "at": c.created_at}
            for c in r.comments.all()
        ],
        "gate": r.gate,
        "checks": r.checks,
        "operation": str(operation.id) if operation else None,
        "url": reverse("request_detail", args=[r.pk]),
    }


@router.get("/requests/{pk}", response={200: RequestDetail, **READ}, url_name="api_request")
def request_(request, pk: Id):
    """A request with its approvals (and whether each still counts), comments, metric gate
    and checks when filed, and the operation carrying it out."""
    need(request, "read")
    return request_detail(pk)


# -- batches and operations ------------------------------------------------------------


class BatchQuery(Schema):
    status: choice(Batch.Status.values) = ""  # type: ignore[valid-type]
    page: int = PageNumber


def _batch_item(b: Batch) -> dict:
    return {
        "id": b.pk,
        "actor": b.actor,
        "reason": b.reason,
        "status": b.status,
        "total": b.total,
        "succeeded": b.succeeded,
        "failed": b.failed,
        "created_at": b.created_at,
        "finished_at": b.finished_at,
    }


@router.get("/batches", response={200: BatchPage, **READ}, url_name="api_batches")
def batches(request, query: Query[BatchQuery]):
    """Batches of operations (registrations, stage moves), newest first, with progress."""
    need(request, "read")
    if query.status and query.status not in Batch.Status.values:
        raise bad_query(
            "status", f"{query.status[:40]!r} is not a status", ", ".join(Batch.Status.values)
        )
    found = Batch.objects.order_by("-created_at", "-id")
    if query.status:
        found = found.filter(status=query.status)
    page = Paginator(found, PER_PAGE).get_page(page_number(query.page))
    return {**page_fields(page), "items": [_batch_item(b) for b in page.object_list]}


@router.get("/batches/{pk}", response={200: BatchDetail, **READ}, url_name="api_batch")
def batch(request, pk: Id):
    """A batch and each of its operations: status, attempts, the last error."""
    need(request, "read")
    try:
        row = Batch.objects.get(pk=pk)
    except Batch.DoesNotExist:
        raise not_found(f"batch #{pk} does not exist") from None
    operations = Operation.objects.filter(batch=row).order_by("position")
    return {
        **_batch_item(row),
        "operations": [
            {
                "id": str(op.id),
                "kind": op.kind,
                "template": op.template_name,
                "version": op.version,
                "target_stage": op.target_stage,
                "status": op.status,
                "attempts": op.attempts,
                "last_error": op.last_error,
            }
            for op in operations
        ],
    }


# -- experiments ---------------------------------------------------------------------------


def _finite(value):
    """Plain JSON: dataclasses as objects, NaN and infinities (no data yet) as null."""
    if dataclasses.is_dataclass(value):
        return {k: _finite(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ExperimentQuery(Schema):
    metric: str = Field("", max_length=100)


@router.get("/experiments/{key}", response={200: ExperimentOut, **READ}, url_name="api_experiment")
def experiment(request, key: Annotated[str, Path(max_length=100)], query: Query[ExperimentQuery]):
    """An A/B experiment's results: per variant n, the estimate with its interval, and each
    treatment against the control (needs the view_metrics permission: analysts, reviewers)."""
    token = need(request, "read")
    permissions.require(token.user, "view_metrics", "reading experiment results")
    try:
        row = Experiment.objects.select_related("template", "native_prompt").get(key=key)
    except Experiment.DoesNotExist:
        raise not_found(f"no experiment {key[:100]!r}") from None
    result = experiment_results.results(row, query.metric or None)
    return {
        "key": row.key,
        "template": row.subject_name,
        "native": row.is_native,
        "status": row.state(),
        "metric": result.metric,
        "kind": result.kind,
        "metrics": result.metrics,
        "min_samples": row.min_samples,
        "enough": result.enough,
        "variants": [
            {
                "name": v.variant.name,
                "version": v.variant.label,
                "n": v.sample.n,
                "estimate": _finite(v.estimate),
                "comparison": _finite(v.comparison) if v.comparison else None,
                "enough": v.enough,
            }
            for v in result.variants
        ],
    }


# -- the audit trail --------------------------------------------------------------------


class AuditQuery(Schema):
    template: str = Field("", max_length=200)
    actor: str = Field("", max_length=150)
    action: str = Field("", max_length=150)
    source: choice(AuditEvent.Source.values) = ""  # type: ignore[valid-type]
    since: str = Field("", max_length=40, description="an ISO 8601 date or date-time")
    until: str = Field("", max_length=40, description="an ISO 8601 date or date-time")
    before: int | None = Field(None, ge=1, le=2**62)


def _audit_filters(query: AuditQuery) -> dict:
    values, errors = audit_filters.read_filters(query.dict())
    if errors:
        _field, _message = next(iter(errors.items()))
        raise ApiProblem(
            400,
            "bad-query",
            "Bad query parameter",
            "; ".join(errors.values()),
            errors=[{"field": k, "message": v} for k, v in errors.items()],
        )
    return values


@router.get("/audit", response={200: AuditPage, **READ}, url_name="api_audit")
def audit(request, query: Query[AuditQuery]):
    """Audit events, newest first, 50 a page: go on with ``before=next_before``."""
    need(request, "read")
    values = _audit_filters(query)
    if query.before is not None and not 1 <= query.before <= 2**62:
        raise bad_query("before", f"{query.before} is out of range", "a positive event number")
    events, more = audit_selectors.audit_events(
        audit_selectors.AuditFilters(**values), before=query.before
    )
    items = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "source": e.source,
            "before": e.before,
            "after": e.after,
        }
        for e in events
    ]
    return {"items": items, "next_before": more}


@router.get(
    "/audit.csv",
    response={200: str, **READ},
    url_name="api_audit_csv",
    openapi_extra={"responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def audit_csv(request, query: Query[AuditQuery]):
    """The audit trail as CSV, as the audit page exports it (needs the export permission)."""
    need(request, "read")
    permissions.require(request.auth.user, "export_auditevent", "exporting the audit trail")
    values = _audit_filters(query)
    response = StreamingHttpResponse(
        audit_export.csv_lines(audit_export.events_for_export(**values)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response
