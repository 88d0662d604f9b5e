"""The API's request and response bodies (pydantic, through django-ninja)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from registry_ui.web.reviews.releases import MAX_LINES as MAX_RELEASE_LINES


class Page(Schema):
    count: int
    page: int
    pages: int
    next_page: int | None = None


class RequestBrief(Schema):
    id: int
    status: str
    target_stage: str
    version: str


class TemplateItem(Schema):
    name: str
    version_count: int
    production: str | None = None
    staging: str | None = None
    newest_dev: str | None = None
    latest: str | None = None
    tags: list[str]
    pending: list[RequestBrief]


class TemplatePage(Page):
    items: list[TemplateItem]


class VersionItem(Schema):
    version: str
    stage: str
    author: str
    registered_by: str
    content_sha256: str
    created_at: datetime | None = None
    missing: bool
    tampered: bool


class TemplateDetail(Schema):
    name: str
    production: str | None = None
    staging: str | None = None
    versions: list[VersionItem]
    open_requests: list[RequestBrief]


class CheckSummary(Schema):
    passed: bool
    trigger: str
    at: datetime
    results: list[dict[str, Any]]


class VersionDetail(VersionItem):
    template: str
    text: str
    variables: list[str]
    metadata: dict[str, Any]
    checks: CheckSummary | None = None


class DiffOut(Schema):
    template: str
    old: str
    new: str
    template_diff: dict[str, Any]
    metadata_diff: dict[str, Any]
    bump: dict[str, Any]
    # Chat templates, model configuration, response format (when either version has them).
    messages_diff: list[dict[str, Any]] | None = None
    model_config_diff: list[dict[str, Any]] | None = None
    response_format_diff: list[dict[str, Any]] | None = None


class RenderIn(Schema):
    values: dict[str, Any] = Field(default_factory=dict)


class RenderOut(Schema):
    text: str


class ApprovalOut(Schema):
    reviewer: str
    comment: str
    at: datetime
    valid: bool


class CommentOut(Schema):
    author: str
    kind: str
    text: str
    at: datetime


class RequestItem(Schema):
    id: int
    kind: str
    status: str
    template: str | None = None
    version: str | None = None
    from_stage: str
    target_stage: str
    requester: str
    required_approvals: int
    created_at: datetime
    decided_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str


class RequestPage(Page):
    items: list[RequestItem]


class RequestDetail(RequestItem):
    justification: str
    items: list[RequestItem] = Field(
        default_factory=list, description="A release's moves, one request each"
    )
    approvals: list[ApprovalOut]
    valid_approvals: int
    comments: list[CommentOut]
    gate: dict[str, Any]
    checks: dict[str, Any]
    operation: str | None = None
    url: str


class OperationOut(Schema):
    id: str
    kind: str
    template: str
    version: str
    target_stage: str
    status: str
    attempts: int
    last_error: str


class BatchItem(Schema):
    id: int
    actor: str
    reason: str
    status: str
    total: int
    succeeded: int
    failed: int
    created_at: datetime
    finished_at: datetime | None = None


class BatchPage(Page):
    items: list[BatchItem]


class BatchDetail(BatchItem):
    operations: list[OperationOut]


class AuditEventOut(Schema):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    source: str
    before: Any = None
    after: Any = None


class AuditPage(Schema):
    items: list[AuditEventOut]
    next_before: int | None = None


class TemplateFile(Schema):
    path: str = Field(max_length=500)
    content: str


class FilesIn(Schema):
    files: list[TemplateFile] = Field(max_length=2000)


class RegisterIn(FilesIn):
    reason: str = Field("", max_length=2000)


class VersionRef(Schema):
    name: str
    version: str


class ValidateOut(Schema):
    valid: bool
    files: int
    versions: list[VersionRef]
    problems: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


class RegisterOut(Schema):
    batch: int | None = None
    status: str
    versions: list[VersionRef]
    detail: str


class FileRequestIn(Schema):
    template: str = Field(max_length=500)
    version: str = Field(max_length=40)
    target: str = Field(max_length=20)
    justification: str = Field(max_length=20000)
    dry_run: bool = False


class RollbackIn(Schema):
    template: str = Field(max_length=500)
    version: str = Field(max_length=40)
    reason: str = Field(max_length=20000)
    dry_run: bool = False


class FiledOut(Schema):
    dry_run: bool
    request: RequestDetail | None = None
    detail: str


class ReleaseLineIn(Schema):
    template: str = Field(max_length=500)
    version: str = Field(max_length=40)
    target: str = Field(max_length=20, description="staging or production")


class ReleaseIn(Schema):
    items: list[ReleaseLineIn] = Field(min_length=1, max_length=MAX_RELEASE_LINES)
    justification: str = Field("", max_length=20000, description="Required unless dry_run")
    dry_run: bool = False


class ReleasePlanOut(Schema):
    template: str
    version: str
    target: str
    from_stage: str | None
    replaces: str | None = Field(description="The version that leaves the target stage")
    changes: list[str]
    problems: list[str]


class ReleaseOut(Schema):
    dry_run: bool
    ready: bool = Field(description="True when no item has a problem")
    plan: list[ReleasePlanOut] = Field(
        description="A dry run's plan, item by item; empty once filed (see request.items)"
    )
    request: RequestDetail | None = None
    detail: str


class ApproveIn(Schema):
    comment: str = Field("", max_length=20000)
    gate_reason: str = Field("", max_length=20000)
    checks_reason: str = Field("", max_length=20000)


class RejectIn(Schema):
    comment: str = Field(max_length=20000)


class CommentIn(Schema):
    text: str = Field(max_length=20000)


class TokenOut(Schema):
    name: str
    kind: str
    account: str
    scopes: list[str]
    expires_at: datetime
    last_used_at: datetime | None = None


class OutcomesOut(Schema):
    received: int
    accepted: int
    duplicates: int


class VariantOut(Schema):
    name: str
    version: str
    n: int
    estimate: dict[str, Any]
    comparison: dict[str, Any] | None = None
    enough: bool


class ExperimentOut(Schema):
    key: str
    template: str  # the template's name, or the native prompt's
    native: bool = False  # on a native prompt of MLflow's Prompt Registry
    status: str
    metric: str
    kind: str
    metrics: list[str]
    min_samples: int
    enough: bool
    variants: list[VariantOut]
