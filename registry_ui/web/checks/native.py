"""Test cases of MLflow's native prompts, run and stored like a template version's.

The cases are written as templates' are (docs/template-files.md, ``test_cases``), as JSON in
the prompt version's tag ``registry_ui.test_cases``, or in the prompt's tag of that name for
every version that has none of its own; a team sets them with MLflow's own API
(``mlflow.genai.register_prompt(..., tags=...)``, ``set_prompt_version_tag``). They are
rendered with MLflow's own formatting (``{{ name }}``; Jinja2 prompts by MLflow's Jinja2
sandbox), so a case checks what ``load_prompt(...).format(...)`` returns.

- When the mirror sees a version, or its cases change in MLflow, they are run and stored
  (``run_changed``), so pages only read stored runs.
- On demand, an author or a reviewer runs them again (``run_on_demand``, audited).
- Before a governed alias moves, they are run once more; a failing version is refused unless
  the request accepted it with a reason (prompts/native.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery

from registry_ui.core.checks import (
    TEST_CASES_KEY,
    CaseResult,
    Failure,
    run_version_cases,
    summarize,
)
from registry_ui.core.limits import InputLimits
from registry_ui.core.native import format_native_bounded, is_jinja
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, NativeCheckRun, NativePromptVersion

CASES_TAG = "registry_ui.test_cases"
Trigger = NativeCheckRun.Trigger


def cases_text(version: NativePromptVersion) -> tuple[str, str]:
    """(the cases as written, where: "version" or "prompt"), ("", "") when there are none."""
    own = (version.tags or {}).get(CASES_TAG, "")
    if own.strip():
        return own, "version"
    shared = (version.prompt.tags or {}).get(CASES_TAG, "")
    return (shared, "prompt") if shared.strip() else ("", "")


def cases_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest() if text.strip() else ""


def _render_for(version: NativePromptVersion):
    if not is_jinja(version.template):
        return format_native_bounded

    def render_jinja(text: str, values: Mapping[str, Any], limits: InputLimits) -> str:
        from registry_ui.prompt_model import get_registry

        rendered = get_registry().gateway.format_jinja(text, dict(values))
        if len(rendered) > limits.rendered_length:
            raise ValueError(
                f"the rendered text is longer than {limits.rendered_length:,} characters, "
                "the most rendered here: shorten the values or the template"
            )
        return rendered

    return render_jinja


def run_cases_of(version: NativePromptVersion) -> list[CaseResult]:
    """The version's cases run now (nothing stored); [] when it has none."""
    written, where = cases_text(version)
    if not written:
        return []
    tag = f"the {where} tag {CASES_TAG}"
    try:
        data = json.loads(written)
    except json.JSONDecodeError as error:
        return [
            _unreadable(
                f"{tag} is not JSON, at line {error.lineno}, column {error.colno}: {error.msg}"
            )
        ]
    if not isinstance(data, list):
        return [_unreadable(f"{tag} must be a JSON list of test cases, not {type(data).__name__}")]
    text = version.template if isinstance(version.template, str) else _chat_text(version)
    results = run_version_cases(
        text,
        {TEST_CASES_KEY: data},
        settings.INPUT_LIMITS,
        _extra(version),
        _render_for(version),
    )
    return [_named_tag(result, tag) for result in results]


def _unreadable(message: str) -> CaseResult:
    return CaseResult(
        "(test cases)", False, None, (Failure("the test cases can be read", message),)
    )


def _named_tag(result: CaseResult, tag: str) -> CaseResult:
    """A case list that cannot be read says which tag holds it."""
    if result.name != "(test cases)":
        return result
    failures = tuple(Failure(f.expectation, f"{tag}: {f.message}") for f in result.failures)
    return CaseResult(result.name, False, None, failures)


def _chat_text(version: NativePromptVersion) -> str:
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in version.template)


def _extra(version: NativePromptVersion) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if version.is_chat:
        extra["messages"] = [dict(m) for m in version.template]
    if version.response_format is not None:
        extra["response_format"] = version.response_format
    return extra


def run(version: NativePromptVersion, *, trigger: str, actor: str) -> NativeCheckRun | None:
    """Run the version's cases and store the run; None when it has no cases."""
    written, _ = cases_text(version)
    if not written:
        return None
    results = run_cases_of(version)
    return NativeCheckRun.objects.create(
        version=version,
        trigger=trigger,
        results=[result.to_data() for result in results],
        passed=all(result.passed for result in results),
        cases_sha256=cases_hash(written),
        actor=actor,
    )


def latest_run(version: NativePromptVersion) -> NativeCheckRun | None:
    """The newest run of the version's current cases (None: no cases, or not run yet)."""
    wanted = cases_hash(cases_text(version)[0])
    if not wanted:
        return None
    return version.check_runs.filter(cases_sha256=wanted).first()


def results_of(run: NativeCheckRun | None) -> list[CaseResult]:
    return [CaseResult.from_data(data) for data in run.results] if run else []


def run_changed(versions: Iterable[NativePromptVersion], *, actor: str = "mlflow") -> int:
    """Run the cases of the versions whose current cases have no stored run (new versions,
    or cases changed in MLflow); one query to find them. Returns how many were run."""
    versions = [v for v in versions if cases_text(v)[0]]
    if not versions:
        return 0
    newest = NativeCheckRun.objects.filter(version=OuterRef("pk")).order_by("-created_at", "-id")
    last = dict(
        NativePromptVersion.objects.filter(pk__in=[v.pk for v in versions])
        .annotate(last=Subquery(newest.values("cases_sha256")[:1]))
        .values_list("pk", "last")
    )
    count = 0
    for version in versions:
        if last.get(version.pk) != cases_hash(cases_text(version)[0]):
            run(version, trigger=Trigger.MIRROR, actor=actor)
            count += 1
    return count


def run_on_demand(user, version: NativePromptVersion) -> NativeCheckRun | None:
    """An author or a reviewer runs the version's cases again; audited."""
    permissions.require(user, permissions.RUN_CHECKS, "running a native prompt's test cases")
    username = user.get_username()
    with trail.atomic():
        found = run(version, trigger=Trigger.ON_DEMAND, actor=username)
        if found is not None:
            results = results_of(found)
            trail.record(
                actor=username,
                action="native_prompt.checks_run",
                object_type="native_prompt",
                object_id=version.prompt.name,
                before=None,
                after={
                    "version": version.semver,
                    "passed": found.passed,
                    "cases": len(results),
                    "failing": [r.name for r in results if not r.passed],
                },
                source=AuditEvent.Source.DASHBOARD,
            )
    return found


def failing_before_move(version: NativePromptVersion, *, actor: str) -> str:
    """Run the cases once more (stored); what fails in words, "" when they pass or there
    are none."""
    found = run(version, trigger=Trigger.PROMOTION, actor=actor)
    if found is None or found.passed:
        return ""
    return summarize(results_of(found))


def failing_now(version: NativePromptVersion) -> str:
    """What fails in words ("" when the cases pass or there are none), from the stored run
    of the current cases, run and stored first if there is none."""
    found = latest_run(version)
    if found is None:
        found = run(version, trigger=Trigger.MIRROR, actor="registry_ui")
    if found is None or found.passed:
        return ""
    return summarize(results_of(found))
