"""A new version's draft: checked as the author types (writing nothing), then filed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from registry_ui.core.checks import registration_problems
from registry_ui.core.diff import compare_templates
from registry_ui.core.errors import BatchRegistrationError
from registry_ui.core.limits import MAX_TEMPLATE_LENGTH, MAX_TEXT
from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.core.policy import PolicyError
from registry_ui.core.semver import (
    Bump,
    InvalidVersionError,
    SemVer,
    VersionBumpError,
    check_bump,
    required_bump,
)
from registry_ui.core.template import TemplateError, validate_template
from registry_ui.registry import NewVersion
from registry_ui.web import permissions
from registry_ui.web.models import AuditEvent, Batch, TemplateVersion
from registry_ui.web.operations import queue
from registry_ui.web.prompts import selectors


@dataclass
class Draft:
    name: str = ""
    version: str = ""
    template: str = ""
    metadata: str = "{}"  # JSON text, as typed
    reason: str = ""


@dataclass
class DraftCheck:
    """Every problem of a draft by field, and what the mirror suggests for it."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    template_errors: list[TemplateError] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    latest: TemplateVersion | None = None
    comparison: dict[str, Any] | None = None
    suggested_version: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.template_errors

    @property
    def problem_count(self) -> int:
        return len(self.template_errors) + sum(len(m) for m in self.errors.values())

    def add(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)


def draft_check(draft: Draft) -> DraftCheck:
    """Check a draft against the mirror's latest version of its template: no MLflow call."""
    check = DraftCheck()
    name_ok = _check_name(draft, check)
    if not draft.template:
        check.add("template", "the template text is required, e.g. 'Hello {name}'")
    elif len(draft.template) > MAX_TEMPLATE_LENGTH:
        check.add(
            "template",
            f"the template is {len(draft.template):,} characters long: MLflow keeps at most "
            f"{MAX_TEMPLATE_LENGTH:,}",
        )
    else:
        check.template_errors = validate_template(draft.template)
    _check_metadata(draft, check)
    if len(draft.reason) > MAX_TEXT:
        check.add("reason", f"the reason is {len(draft.reason):,} characters: at most 5,000")
    if name_ok:
        check.latest = selectors.latest_version(draft.name)
    _check_version(draft, check)
    return check


def _check_name(draft: Draft, check: DraftCheck) -> bool:
    try:
        validate_template_name(draft.name)
    except InvalidNameError as error:
        check.add("name", str(error))
        return False
    return True


def _check_metadata(draft: Draft, check: DraftCheck) -> None:
    try:
        metadata = json.loads(draft.metadata or "{}")
    except json.JSONDecodeError as error:
        check.add(
            "metadata",
            f"{error.lineno}:{error.colno}: not JSON: {error.msg}; write an object, "
            'e.g. {"author": "alice"}',
        )
        return
    if not isinstance(metadata, dict):
        check.add("metadata", 'metadata must be a JSON object, e.g. {"author": "alice"}')
        return
    check.metadata = metadata
    for problem in registration_problems(metadata, settings.REQUIRED_METADATA):
        check.add("metadata", problem)


def _check_version(draft: Draft, check: DraftCheck) -> None:
    latest, text_ok = check.latest, bool(draft.template) and not check.template_errors
    metadata = check.metadata if check.metadata is not None else {}
    if latest is not None and text_ok and "template" not in check.errors:
        check.comparison = compare_templates(
            latest.text, draft.template, old_metadata=latest.metadata, new_metadata=metadata
        )
        needed = required_bump(latest.text, draft.template, latest.metadata, metadata).bump
        check.suggested_version = str(SemVer.parse(latest.version).bumped(max(needed, Bump.PATCH)))
    elif latest is None and "name" not in check.errors:
        check.suggested_version = "1.0.0"
    if not draft.version:
        hint = f": {check.suggested_version} is suggested" if check.suggested_version else ""
        check.add("version", f"the version is required (MAJOR.MINOR.PATCH){hint}")
        return
    try:
        SemVer.parse(draft.version)
    except InvalidVersionError as error:
        check.add("version", str(error))
        return
    if latest is None or not text_ok:
        return
    if TemplateVersion.objects.filter(template=latest.template, version=draft.version).exists():
        check.add(
            "version",
            f"{draft.version} is registered already: use {check.suggested_version} or later",
        )
        return
    try:
        check_bump(
            latest.version, latest.text, draft.version, draft.template, latest.metadata, metadata
        )
    except VersionBumpError as error:
        check.add("version", f"against {latest.version}, the latest: {error}")


class DraftRefused(PolicyError):
    def __init__(self, check: DraftCheck, message: str = ""):
        self.check = check
        super().__init__(message or "the version was not filed: fix the errors shown")


def version_file(user, *, draft: Draft) -> Batch:
    """File a one-version batch registering the draft; refused whole with every error.

    The draft is checked against the mirror first, so bad input never reaches MLflow;
    batch_register then checks it once more against MLflow itself (one read) and files it.
    """
    permissions.require(user, "register_version", "registering a version")
    check = draft_check(draft)
    if not check.ok:
        raise DraftRefused(check)
    new = NewVersion(draft.name, str(SemVer.parse(draft.version)), draft.template, check.metadata)
    try:
        batch = queue.batch_register(
            versions=[new],
            actor=user.get_username(),
            reason=draft.reason.strip(),
            user=user,
            source=AuditEvent.Source.DASHBOARD,
        )
    except BatchRegistrationError as error:
        for problem in error.errors:
            check.add("__all__", problem)
        raise DraftRefused(check) from None
    if batch is None:
        check.add(
            "version",
            f"{draft.name} {draft.version} is registered already with this content: nothing "
            "to file",
        )
        raise DraftRefused(check)
    return batch
