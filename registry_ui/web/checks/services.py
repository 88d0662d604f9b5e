"""Checks in the dashboard: each version's test cases run and stored, and the metadata policy.

- On registration: the mirror runs the cases of every version it sees for the first time
  (the worker's registration included), and stores the results with the version.
- On demand: an author or a reviewer runs them again (``version_run_checks``, audited).
- Before a promotion: the worker runs them once more and refuses while a case fails,
  unless a reviewer approved the request with a written reason (approvals.approve).

The cases live in the version's metadata (``test_cases``), so running them needs neither
MLflow nor the network: the mirror holds the text and the metadata. The rules are in
registry_ui.core.checks.

Pages only read what is stored: a version's latest run, and the cases it breaks that another
version passed (a CheckComparison, computed the first time a page asks for that pair and
kept). Every run is bounded by settings.INPUT_LIMITS (its renders, and its budget of steps).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction

from registry_ui.core.checks import (
    TEST_CASES_KEY,
    CaseResult,
    cases_for_comparison,
    cases_in,
    regressions,
    run_cases,
    run_version_cases,
    summarize,
)
from registry_ui.core.checks import TestCaseError as CaseError
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.models import (
    AuditEvent,
    CheckComparison,
    CheckRun,
    PromotionRequest,
    TemplateVersion,
)

Trigger = CheckRun.Trigger


# Who may run a version's checks on demand: everyone who takes part in reviews (authors and
# reviewers). Running them changes no version; it adds a result to the page, like a comment.


def has_cases(version: TemplateVersion) -> bool:
    return bool((version.metadata or {}).get(TEST_CASES_KEY))


def metadata_problems(version: TemplateVersion) -> list[str]:
    """What the version's metadata lacks under the current policy (REQUIRED_METADATA).

    Registration refuses such versions; one registered before the policy (or outside
    registry_ui) is flagged with these, and keeps loading and rendering as before.
    """
    return settings.REQUIRED_METADATA.problems(version.metadata)


def results_of(run: CheckRun | None) -> list[CaseResult]:
    return [CaseResult.from_data(data) for data in run.results] if run else []


def latest_run(version: TemplateVersion) -> CheckRun | None:
    return version.check_runs.order_by("-created_at", "-id").first()


def run_checks(version: TemplateVersion, *, trigger: str, actor: str) -> CheckRun:
    """Run the version's test cases now and store the results with the version."""
    results = run_version_cases(
        version.text, version.metadata, settings.INPUT_LIMITS, version.extra
    )
    return CheckRun.objects.create(
        version=version,
        trigger=trigger,
        results=[result.to_data() for result in results],
        passed=all(result.passed for result in results),
        actor=actor[:150],
    )


def record_registration_runs(rows: Iterable[TemplateVersion], *, actor: str) -> int:
    """One run for each newly mirrored version that carries test cases (the mirror calls it).

    Versions without cases get no row: a first sync mirrors thousands of them.
    """
    runs = []
    for row in rows:
        if not has_cases(row):
            continue
        results = run_version_cases(row.text, row.metadata, settings.INPUT_LIMITS, row.extra)
        runs.append(
            CheckRun(
                version=row,
                trigger=Trigger.REGISTRATION,
                results=[result.to_data() for result in results],
                passed=all(result.passed for result in results),
                actor=actor[:150],
            )
        )
    CheckRun.objects.bulk_create(runs)
    return len(runs)


def ensure_registration_run(template_name: str, version: str, *, actor: str) -> None:
    """After a worker registers a version: its registration run, unless the mirror (or the
    webhook's sync, which may mirror it first) already stored one."""
    row = TemplateVersion.objects.filter(template__name=template_name, version=version).first()
    if row is not None and has_cases(row) and not row.check_runs.exists():
        run_checks(row, trigger=Trigger.REGISTRATION, actor=actor)


def version_run_checks(
    *, user, version_id: int, source: str = AuditEvent.Source.DASHBOARD
) -> CheckRun:
    """Run a version's test cases again for an author or a reviewer; audited."""
    permissions.require(user, permissions.RUN_CHECKS, "running a version's checks")
    username = user.get_username()
    with trail.atomic():
        version = TemplateVersion.objects.select_related("template").get(pk=version_id)
        run = run_checks(version, trigger=Trigger.ON_DEMAND, actor=username)
        results = results_of(run)
        trail.record(
            actor=username,
            action="checks.run",
            object_type="template_version",
            object_id=f"{version.template.name}@{version.version}",
            before=None,
            after={
                "trigger": run.trigger,
                "passed": run.passed,
                "cases": len(results),
                "failing": [r.name for r in results if not r.passed],
            },
            source=source,
        )
    return run


def snapshot(version: TemplateVersion, *, actor: str, store: bool = True) -> dict:
    """The check results a promotion request records when it is filed (like the gate).

    The cases and the text are bound to the version's content hash, as the request is, so
    the latest run speaks for the request. A version mirrored before checks existed is run
    now: stored, unless ``store`` is False (a release's dry run writes nothing).
    """
    if not has_cases(version):
        return {"status": "none", "detail": "no test cases", "failing": []}
    run = latest_run(version)
    if run is None and store:
        run = run_checks(version, trigger=Trigger.ON_DEMAND, actor=actor)
    results = (
        results_of(run)
        if run
        else run_version_cases(version.text, version.metadata, settings.INPUT_LIMITS, version.extra)
    )
    return {
        "status": "pass" if all(r.passed for r in results) else "fail",
        "detail": summarize(results),
        "failing": [r.name for r in results if not r.passed],
        "run": run.pk if run else None,
    }


def failing_cases(request: PromotionRequest) -> list[str]:
    """The failing cases a request recorded when filed: "name version: case, case" per item."""
    if request.kind == PromotionRequest.Kind.RELEASE:
        items = request.items.select_related("template", "version").order_by("id")
        return [line for item in items for line in failing_cases(item)]
    failing = (request.checks or {}).get("failing") or []
    if not failing:
        return []
    return [f"{request.template.name} {request.version.version}: {', '.join(failing)}"]


def promotion_problems(request: PromotionRequest, *, actor: str) -> list[str]:
    """The worker's last check before it moves a version: its cases, run now (and stored).

    A failing case refuses the promotion unless a reviewer approved the request (or its
    release) with a written reason to override the checks. Rollbacks are not gated: they
    bring back a version that held production, and must work in an emergency.
    """
    if request.kind != PromotionRequest.Kind.PROMOTE:
        return []
    version = TemplateVersion.objects.get(pk=request.version_id)
    if not has_cases(version):
        return []
    run = run_checks(version, trigger=Trigger.PROMOTION, actor=actor)
    if run.passed:
        return []
    parent = request.release or request
    if parent.approvals.exclude(checks_override_reason="").exists():
        return []
    failing = ", ".join(r.name for r in results_of(run) if not r.passed)
    return [
        f"{request.label}: test cases fail ({failing}): a reviewer must approve with a written "
        "reason to promote it despite them"
    ]


def compare(old: TemplateVersion, new: TemplateVersion) -> list[CaseResult]:
    """The cases the new version breaks that the old one passed (the diff's check column).

    Both texts run the new version's cases and the old one's that it dropped: once per pair,
    then read from the stored CheckComparison.
    """
    if not (has_cases(old) or has_cases(new)):
        return []
    stored = CheckComparison.objects.filter(old=old, new=new).first()
    if stored is None:
        stored = _store_comparison(old, new, _regressions_now(old, new))
    return results_of_comparison(stored)


def results_of_comparison(stored: CheckComparison) -> list[CaseResult]:
    return [CaseResult.from_data(data) for data in stored.regressions]


def _regressions_now(old: TemplateVersion, new: TemplateVersion) -> list[CaseResult]:
    try:
        cases = cases_for_comparison(cases_in(old.metadata), cases_in(new.metadata))
    except CaseError:
        return []  # unreadable cases are reported by the version's own run
    limits = settings.INPUT_LIMITS
    return regressions(
        run_cases(old.text, cases, limits, old.extra), run_cases(new.text, cases, limits, new.extra)
    )


def _store_comparison(
    old: TemplateVersion, new: TemplateVersion, found: list[CaseResult]
) -> CheckComparison:
    try:
        with transaction.atomic():
            return CheckComparison.objects.create(
                old=old, new=new, regressions=[result.to_data() for result in found]
            )
    except IntegrityError:  # another request stored the same pair first: the same results
        return CheckComparison.objects.get(old=old, new=new)


def results_context(version: TemplateVersion, *, user, compare_stage: str | None = None) -> dict:
    """What the checks partial (registry_ui/checks/_results.html) shows for one version."""
    run = latest_run(version)
    previous = version.compared_with(compare_stage) if has_cases(version) else None
    return {
        "version": version,
        "has_cases": has_cases(version),
        "run": run,
        "results": results_of(run),
        "metadata_problems": metadata_problems(version),
        "previous": previous,
        "regressions": compare(previous, version) if previous else [],
        "compare_stage": compare_stage or "",
        "can_run": permissions.may_run_checks(user),
    }
