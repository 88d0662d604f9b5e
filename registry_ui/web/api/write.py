"""Write endpoints: validate and register batches of template files, file promotion and
rollback requests (with a dry run), approve, reject, comment, withdraw.

Each is a thin call of the domain's service (registry_ui.web.operations.queue,
registry_ui.web.reviews.services): the same rules, permissions and messages as the
dashboard and the commands. Each change is audited by the service and, in the same
transaction, by an ``api.call`` event naming the token that made it.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated

from django.conf import settings
from django.db import transaction
from ninja import Header, Status

from registry_ui import config
from registry_ui.core.errors import BatchRegistrationError, RegistryError
from registry_ui.core.template_files import SUFFIXES, TemplateScan, scan_templates
from registry_ui.registry import NewVersion
from registry_ui.web import permissions
from registry_ui.web.api import idempotency, read
from registry_ui.web.api.auth import need
from registry_ui.web.api.problems import WRITE, ApiProblem
from registry_ui.web.api.read import Id, request_detail
from registry_ui.web.api.schemas import (
    ApproveIn,
    CommentIn,
    FiledOut,
    FileRequestIn,
    FilesIn,
    RegisterIn,
    RegisterOut,
    RejectIn,
    ReleaseIn,
    ReleaseOut,
    RequestDetail,
    RollbackIn,
    ValidateOut,
)
from registry_ui.web.audit import trail
from registry_ui.web.models import ApiToken, AuditEvent
from registry_ui.web.operations import queue
from registry_ui.web.reviews import releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine

# One router with the reads: a path both read and written (/requests) is one URL pattern.
router = read.router
WRITE_TAGS = ["write"]
SOURCE = AuditEvent.Source.API  # every change made through the API, with its api.call event
MAX_FILES_SIZE = 20_000_000
# The optional header of every filing write: a retry with the same key gets the first answer.
IdempotencyKey = Annotated[str | None, Header(alias=idempotency.HEADER)]


@contextmanager
def audited(request, what: str, object_id: str):
    """One transaction: the service's change and the event naming the token."""
    token: ApiToken = request.auth
    with trail.atomic():
        yield
        trail.record(
            actor=token.user.get_username(),
            action="api.call",
            object_type="api_token",
            object_id=f"{token.user.get_username()}/{token.name}",
            before=None,
            after={
                "token": token.label,
                "call": f"{request.method} {request.path}"[:300],
                "what": what,
                "object": object_id,
            },
            source=SOURCE,
        )


# -- template files ---------------------------------------------------------------------


def _scan(files, *, policy) -> TemplateScan:
    """Scan the files as the commands scan a directory (same rules, same messages)."""
    total = sum(len(f.content) for f in files)
    if total > MAX_FILES_SIZE:
        raise ApiProblem(
            413,
            "too-large",
            "Too much text",
            f"the files hold {total:,} characters: at most {MAX_FILES_SIZE:,} in one call",
        )
    seen = set()
    with tempfile.TemporaryDirectory(prefix="registry-ui-api-") as root:
        for index, each in enumerate(files):
            relative = _safe_path(each.path, index)
            if relative in seen:
                raise _file_field(index, f"{relative}: given twice", "each path once")
            seen.add(relative)
            target = Path(root, *PurePosixPath(relative).parts)
            try:
                content = each.content.encode("utf-8")
            except UnicodeEncodeError as error:  # a lone surrogate from a JSON escape
                raise ApiProblem(
                    400,
                    "bad-file-content",
                    "Not text",
                    f"files[{index}].content: character {error.start + 1} is not text "
                    "(a lone UTF-16 surrogate)",
                    errors=[
                        {
                            "field": f"files[{index}].content",
                            "message": "not UTF-8 text",
                            "accepted": "UTF-8 text",
                        }
                    ],
                ) from None
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            except (OSError, ValueError):  # a name too long for a file system, say
                raise _file_field(
                    index, f"{relative[:100]!r} cannot be used as a file path", SHORT_PATH
                ) from None
        if not files:
            raise ApiProblem(
                400,
                "no-files",
                "No template files",
                "files: empty; send at least one template file",
                errors=[{"field": "files", "message": "empty", "accepted": "1 to 2000 files"}],
            )
        scan = scan_templates(root, policy=policy, limits=settings.INPUT_LIMITS)
    prefix = root.rstrip("/") + "/"

    def shown(problem):
        path = problem.path[len(prefix) :] if problem.path.startswith(prefix) else problem.path
        return {
            "path": path,
            "line": problem.line,
            "column": problem.column,
            "message": problem.message,
        }

    scan.problems[:] = [shown(p) for p in scan.problems]  # type: ignore[misc]
    scan.warnings[:] = [shown(p) for p in scan.warnings]  # type: ignore[misc]
    return scan


def _file_field(index: int, message: str, accepted: str) -> ApiProblem:
    return ApiProblem(
        400,
        "bad-file-path",
        "Bad file path",
        f"files[{index}].path: {message}",
        errors=[{"field": f"files[{index}].path", "message": message, "accepted": accepted}],
    )


SHORT_PATH = "a relative path such as prompts/greeting.yaml, ending in .yaml or .yml"


def _safe_path(path: str, index: int) -> str:
    accepted = SHORT_PATH
    text = path.replace("\\", "/").strip()
    parts = PurePosixPath(text).parts
    if (
        not text
        or text.startswith("/")
        or any(part in ("..", ".") or part.startswith(".") for part in parts)
        or "\x00" in text
        or not text.isprintable()
        or any(len(part.encode("utf-8", "replace")) > 200 for part in parts)
        or not text.lower().endswith(SUFFIXES)
    ):
        raise _file_field(index, f"{path[:100]!r} is not accepted", accepted)
    return "/".join(parts)


def _policy():
    try:
        return config.required_metadata()
    except config.ConfigurationError as error:
        raise ApiProblem(500, "misconfigured", "Server misconfigured", str(error)) from None


def _refused_files(scan) -> ApiProblem:
    return ApiProblem(
        422,
        "invalid-templates",
        "The template files have problems",
        f"{len(scan.problems)} problem(s) in the files: nothing was registered",
        errors=scan.problems,
    )


@router.post(
    "/validate", tags=WRITE_TAGS, response={200: ValidateOut, **WRITE}, url_name="api_validate"
)
def validate(request, body: FilesIn):
    """Check template files as ``validate_templates`` does, writing nothing. Each problem
    names the file, line and column."""
    need(request, "read")
    scan = _scan(body.files, policy=_policy())
    return {
        "valid": not scan.problems,
        "files": len(scan.files),
        "versions": [{"name": s.name, "version": s.version} for s in scan.specs],
        "problems": scan.problems,
        "warnings": scan.warnings,
    }


@router.post(
    "/batches",
    tags=WRITE_TAGS,
    response={200: RegisterOut, 202: RegisterOut, **WRITE},
    url_name="api_register",
)
def register(request, body: RegisterIn, idempotency_key: IdempotencyKey = None):
    """Register the versions in the files as one batch, with the rules and messages of
    ``register_templates``. Versions registered already are left out; with none left,
    nothing is filed. A retry with the same ``Idempotency-Key`` gets the first answer."""
    token = need(request, "register")
    permissions.require(token.user, "register_version", "registering versions")
    idempotency.check_key(idempotency_key)
    scan = _scan(body.files, policy=_policy())
    if scan.problems:
        raise _refused_files(scan)
    versions = [
        NewVersion(spec.name, spec.version, spec.template, spec.version_metadata)
        for spec in scan.specs
    ]
    refs = [{"name": v.name, "version": v.version} for v in versions]

    def perform() -> tuple[int, dict]:
        with audited(request, "batch.register", f"{len(versions)} version(s)"):
            try:
                batch = queue.batch_register(
                    versions=versions,
                    actor=token.user.get_username(),
                    reason=body.reason or f"registered through the API ({token.label})",
                    user=token.user,
                    source=SOURCE,
                    against_mirror=True,
                )
            except BatchRegistrationError as error:
                raise ApiProblem(
                    422,
                    "registration-refused",
                    "The batch is refused",
                    str(error).splitlines()[0],
                    errors=[{"message": e} for e in error.errors],
                ) from None
            except (RegistryError, ValueError) as error:
                raise ApiProblem(
                    422, "registration-refused", "The batch is refused", str(error)
                ) from None
        if batch is None:
            return 200, {
                "batch": None,
                "status": "nothing to register",
                "versions": refs,
                "detail": f"all {len(versions)} version(s) are registered already",
            }
        return 202, {
            "batch": batch.pk,
            "status": batch.status,
            "versions": refs,
            "detail": f"batch {batch.pk}: {batch.total} version(s) to register",
        }

    return idempotency.once(request, idempotency_key, perform)


# -- requests ----------------------------------------------------------------------------


class _DryRun(Exception):
    def __init__(self, detail: dict):
        self.detail = detail


def _filed(request, what: str, dry_run: bool, file) -> dict:
    label = "a dry run: nothing was filed" if dry_run else "filed"
    try:
        with transaction.atomic(), audited(request, what, ""):
            row = file()
            detail = request_detail(row.pk)
            if dry_run:
                raise _DryRun(detail)
    except _DryRun as run:
        return {"dry_run": True, "request": run.detail, "detail": label}
    return {"dry_run": False, "request": detail, "detail": f"request #{row.pk} {label}"}


@router.post(
    "/requests",
    tags=WRITE_TAGS,
    response={201: FiledOut, 200: FiledOut, **WRITE},
    url_name="api_file_request",
)
def file_request(request, body: FileRequestIn, idempotency_key: IdempotencyKey = None):
    """File a request to move a version to staging or production. ``dry_run``: check
    everything and say what would be filed, filing nothing. A retry with the same
    ``Idempotency-Key`` gets the first answer."""
    token = need(request, "request")

    def perform() -> tuple[int, dict]:
        answer = _filed(
            request,
            "request.file",
            body.dry_run,
            lambda: reviews.file_request(
                token.user,
                template_name=body.template,
                version=body.version,
                target=body.target,
                justification=body.justification,
                source=SOURCE,
            ),
        )
        return (200 if body.dry_run else 201), answer

    return idempotency.once(request, idempotency_key, perform)


@router.post(
    "/rollbacks",
    tags=WRITE_TAGS,
    response={201: FiledOut, 200: FiledOut, **WRITE},
    url_name="api_file_rollback",
)
def file_rollback(request, body: RollbackIn, idempotency_key: IdempotencyKey = None):
    """File a rollback of production to a version that held it before (reviewers only).
    A retry with the same ``Idempotency-Key`` gets the first answer."""
    token = need(request, "request")

    def perform() -> tuple[int, dict]:
        answer = _filed(
            request,
            "rollback.file",
            body.dry_run,
            lambda: reviews.file_rollback(
                token.user,
                template_name=body.template,
                version=body.version,
                reason=body.reason,
                source=SOURCE,
            ),
        )
        return (200 if body.dry_run else 201), answer

    return idempotency.once(request, idempotency_key, perform)


TARGETS = ("staging", "production")


def _plan_out(plan) -> dict:
    return {
        "template": plan.item.name,
        "version": plan.item.version,
        "target": plan.item.target.value,
        "from_stage": plan.from_stage.value if plan.from_stage else None,
        "replaces": plan.replaces,
        "changes": list(plan.changes),
        "problems": list(plan.problems),
    }


@router.post(
    "/releases",
    tags=WRITE_TAGS,
    response={201: ReleaseOut, 200: ReleaseOut, **WRITE},
    url_name="api_file_release",
)
def file_release(request, body: ReleaseIn, idempotency_key: IdempotencyKey = None):
    """Request many moves as one release, approved once and carried out together.
    ``dry_run``: the plan (what each item changes, what stops it), filing nothing; a release
    with a problem in any item is refused (409) with every problem named. A retry with the
    same ``Idempotency-Key`` gets the first answer."""
    token = need(request, "request")
    permissions.require(token.user, "request_promotion", "requesting a release")
    lines = [ReleaseLine(i.template.strip(), i.version.strip(), i.target) for i in body.items]
    for index, line in enumerate(lines):
        for field, wrong, accepted in (
            ("template", not line.template, "a template name such as team/greeting"),
            ("version", not line.version, "a version such as 1.2.0"),
            ("target", line.target not in TARGETS, "staging or production"),
        ):
            if wrong:
                message = f"{getattr(line, field)[:60]!r} is not accepted"
                raise ApiProblem(
                    400,
                    "bad-release-item",
                    "Bad release item",
                    f"items[{index}].{field}: {message}; {accepted} is",
                    errors=[
                        {
                            "field": f"items[{index}].{field}",
                            "message": message,
                            "accepted": accepted,
                        }
                    ],
                )
    if body.dry_run:
        plans = [_plan_out(p) for p in releases.dry_run(lines)]
        ready = not any(p["problems"] for p in plans)
        verdict = "ready to file" if ready else "not ready: see each item's problems"
        return Status(
            200,
            {
                "dry_run": True,
                "ready": ready,
                "plan": plans,
                "request": None,
                "detail": f"a dry run: nothing was filed; {len(plans)} item(s), {verdict}",
            },
        )

    def perform() -> tuple[int, dict]:
        with audited(request, "release.file", f"{len(lines)} item(s)"):
            release = releases.file_release(
                token.user, lines=lines, justification=body.justification, source=SOURCE
            )
        detail = request_detail(release.pk)
        return 201, {
            "dry_run": False,
            "ready": True,
            "plan": [],  # a dry run's; the filed moves are the request's items
            "request": detail,
            "detail": f"release #{release.pk} filed: {len(detail['items'])} item(s)",
        }

    return idempotency.once(request, idempotency_key, perform)


def _reviewer(request, verb: str) -> ApiToken:
    token = need(request, "review")
    if token.kind != ApiToken.Kind.PERSONAL:
        raise ApiProblem(
            403,
            "service-token-cannot-review",
            "Service tokens never review",
            f"a service token cannot {verb} a request: approving and rejecting are for "
            "people with the reviewer role, with their personal token or on the dashboard",
            scope="review",
        )
    return token


@router.post(
    "/requests/{pk}/approve",
    tags=WRITE_TAGS,
    response={200: RequestDetail, **WRITE},
    url_name="api_approve",
)
def approve(request, pk: Id, body: ApproveIn):
    """Approve as a reviewer (personal tokens with ``review`` only). Four eyes: never a
    request you filed or a version you wrote."""
    token = _reviewer(request, "approve")
    with audited(request, "request.approve", str(pk)):
        reviews.approve(
            token.user,
            pk,
            comment=body.comment,
            gate_reason=body.gate_reason,
            checks_reason=body.checks_reason,
            source=SOURCE,
        )
    return request_detail(pk)


@router.post(
    "/requests/{pk}/reject",
    tags=WRITE_TAGS,
    response={200: RequestDetail, **WRITE},
    url_name="api_reject",
)
def reject(request, pk: Id, body: RejectIn):
    """Reject, saying why (personal tokens with ``review`` only)."""
    token = _reviewer(request, "reject")
    with audited(request, "request.reject", str(pk)):
        reviews.reject(token.user, pk, comment=body.comment, source=SOURCE)
    return request_detail(pk)


@router.post(
    "/requests/{pk}/comment",
    tags=WRITE_TAGS,
    response={200: RequestDetail, **WRITE},
    url_name="api_comment",
)
def comment(request, pk: Id, body: CommentIn):
    """Comment on a request (scope ``request`` or ``review``)."""
    token: ApiToken = request.auth
    need(request, "review" if "review" in token.scopes else "request")
    with audited(request, "request.comment", str(pk)):
        reviews.add_comment(token.user, pk, text=body.text, source=SOURCE)
    return request_detail(pk)


@router.post(
    "/requests/{pk}/withdraw",
    tags=WRITE_TAGS,
    response={200: RequestDetail, **WRITE},
    url_name="api_withdraw",
)
def withdraw(request, pk: Id):
    """Withdraw a request you filed."""
    token = need(request, "request")
    with audited(request, "request.withdraw", str(pk)):
        reviews.withdraw(token.user, pk, source=SOURCE)
    return request_detail(pk)
