"""Native prompts (MLflow's Prompt Registry) mirrored and governed in place.

- ``sync_native_prompts``: mirror every native prompt (versions, derived semantic versions,
  aliases); for a governed prompt, a governed alias that MLflow has elsewhere than registry_ui
  accepted is flagged, audited and, if the deployment chooses (NATIVE_REVERT_OUTSIDE_MOVES),
  moved back. Called by the registry sync (mirror.py) and by MLflow's prompt webhooks.
- ``adopt_prompts``: what ``manage.py import_prompts`` does: takes prompts under governance,
  writes the derived semantic versions as version tags, keeps the current aliases as the
  starting state (audited as adopted). A second run changes nothing.
- ``file_alias_request``, ``approve_alias_request``, ``execute_alias_request``: a governed
  alias moves only after the approvals APPROVALS_REQUIRED asks for (four eyes: not by the
  requester), with a compare-and-set on the alias in MLflow, audited.

docs/mlflow-prompts.md explains all of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Max, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from registry_ui.core.errors import NotFoundError
from registry_ui.core.native import (
    SEMVER_TAG,
    NativeVersion,
    derive_semvers,
    native_changes,
)
from registry_ui.core.semver import Bump, SemVer, declared_bump
from registry_ui.prompt_model import get_registry
from registry_ui.web import permissions
from registry_ui.web.audit import trail
from registry_ui.web.checks import native as native_checks
from registry_ui.web.checks.native import CASES_TAG
from registry_ui.web.models import AuditEvent, NativeAliasRequest, NativePrompt, NativePromptVersion
from registry_ui.web.prompts import signals

OBJECT = "native_prompt"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Governance:
    """Which native prompts are governed and which of their aliases (settings)."""

    rule: str = "none"  # none, all, prefix:<P>, tag:<key> or tag:<key>=<value>
    aliases: tuple[str, ...] = ("staging", "production")
    revert_outside_moves: bool = False

    def covers(self, name: str, tags: dict[str, str]) -> bool:
        if self.rule == "all":
            return True
        if self.rule.startswith("prefix:"):
            return name.startswith(self.rule[len("prefix:") :])
        if self.rule.startswith("tag:"):
            key, _, value = self.rule[len("tag:") :].partition("=")
            return key in tags and (not value or tags[key] == value)
        return False


def governance() -> Governance:
    return Governance(
        rule=getattr(settings, "NATIVE_PROMPTS_GOVERNED", "none"),
        aliases=tuple(getattr(settings, "NATIVE_GOVERNED_ALIASES", ("staging", "production"))),
        revert_outside_moves=getattr(settings, "NATIVE_REVERT_OUTSIDE_MOVES", False),
    )


# -- mirror ------------------------------------------------------------------------------


def sync_native_prompts(gateway=None, *, name: str = "") -> dict[str, int]:
    """Mirror native prompts (all, or the one named) and check their governed aliases.

    Two MLflow calls (two paged searches) whatever the number of prompts, plus one write per
    alias moved back.
    """
    gateway = gateway or get_registry().gateway
    prompts, versions = gateway.native_versions_all(prefix=name)
    if name:
        prompts = {name: prompts[name]} if name in prompts else {}
    rule = governance()
    counts = {
        "native_prompts": len(prompts),
        "native_changes": 0,
        "native_outside_moves": 0,
        "native_checks_run": 0,
    }
    for prompt_name, info in sorted(prompts.items()):
        with trail.atomic():
            row, created, added, touched = _mirror(prompt_name, info, versions.get(prompt_name, []))
            if not row.governed and rule.covers(prompt_name, row.tags):
                row.governed = True
                row.governed_aliases = _governed(info["aliases"], rule)
                row.save(update_fields=["governed", "governed_aliases"])
                _audit("sync", "native_prompt.governed", prompt_name, None, row.governed_aliases)
            if added and not created:
                _audit("mlflow", "native_prompt.updated", prompt_name, None, {"versions": added})
            counts["native_changes"] += int(created) + len(added)
        counts["native_checks_run"] = counts.get(
            "native_checks_run", 0
        ) + native_checks.run_changed(touched)
        counts["native_outside_moves"] += _check_aliases(gateway, prompt_name, rule)
    if not name:
        counts["native_published"], counts["native_unpublishable"] = publish_stages(prompts)
    return counts


# -- publishing registry_ui templates as native prompts ---------------------------------------


def publishing_chosen(name: str, metadata: dict | None) -> bool:
    """Whether a template is published as a native prompt: its metadata's ``publish_native``
    (true or false) if it says, else NATIVE_PUBLISH (none, all, prefix:<P>)."""
    said = (metadata or {}).get("publish_native")
    if isinstance(said, bool):
        return said
    rule = getattr(settings, "NATIVE_PUBLISH", "none")
    if rule == "all":
        return True
    if rule.startswith("prefix:"):
        return name.startswith(rule[len("prefix:") :])
    return False


def native_form(row) -> tuple[bool, list[str]]:
    """(publishable, reasons) of a mirrored version in the native format (core/native.py)."""
    from registry_ui.core.native import messages_to_native, to_native
    from registry_ui.core.template import TemplateValidationError

    messages = (row.extra or {}).get("messages")
    try:
        if messages:
            converted, reasons = messages_to_native(messages)
            return converted is not None, list(reasons)
        conversion = to_native(row.text)
    except TemplateValidationError as error:  # only a hand-edited mirror row could
        return False, [str(error)]
    return conversion.publishable, list(conversion.reasons)


def _deciding(versions):
    """The version whose metadata's ``publish_native`` decides for its template: the
    production holder, else the staging one, else the newest."""
    live = [v for v in versions if not v.missing_since]
    for stage in ("production", "staging"):
        for version in live:
            if version.stage == stage:
                return version
    return max(live or versions, key=lambda v: (v.major, v.minor, v.patch), default=None)


def publication(template, versions) -> dict | None:
    """What the template page says about publishing, or None when the template is not
    chosen: the native prompt's name and aliases, its stage holders (whether each can be
    published and why not), and the other versions left out and why. ``versions``: the
    template's mirrored versions."""
    from registry_ui.core.native import published_name

    deciding = _deciding(versions)
    if deciding is None or not publishing_chosen(template.name, deciding.metadata):
        return None
    target = published_name(template.name)
    mirrored = NativePrompt.objects.filter(name=target).first()
    published = (
        dict(mirrored.versions.values_list("semver", "number")) if mirrored is not None else {}
    )
    live = sorted(
        (v for v in versions if not v.missing_since),
        key=lambda v: (v.major, v.minor, v.patch),
        reverse=True,
    )
    holders, left_out = [], []
    for version in live:
        publishable, reasons = native_form(version)
        if version.tampered_at:
            publishable = False
            reasons = ["its content in MLflow no longer matches what was registered"]
        row = {
            "version": version,
            "publishable": publishable,
            "reasons": reasons,
            "number": published.get(version.version),
        }
        if version.stage in ("staging", "production"):
            holders.append(row)
        elif not publishable:
            left_out.append(row)
    holders.sort(key=lambda row: row["version"].stage != "production")
    return {
        "name": target,
        "aliases": mirrored.aliases if mirrored else {},
        "holders": holders,
        "left_out": left_out,
        "published": len(published),
        "versions": len(live),
    }


def sync_native_changes(
    gateway, *, overlap_ms: int, now_ms: int, first_since: int
) -> dict[str, int]:
    """The incremental pass for native prompts: one call lists the prompts whose MLflow
    timestamp moved since the newest one mirrored (a new version, a new prompt); each is
    then mirrored as its webhook would (``sync_native_prompts(name=...)``). With none
    mirrored yet, since ``first_since`` (the templates' newest: the last full sweep).
    ``overlap_ms``: as for templates (mirror.SYNC_OVERLAP_MS)."""
    since = NativePrompt.objects.aggregate(newest=Max("mlflow_updated_ms"))["newest"]
    if since is None:
        since = first_since
    start = since + 1 if now_ms - since > 2 * overlap_ms else since - overlap_ms
    listed = gateway.native_changed_since(start)
    known = dict(
        NativePrompt.objects.filter(name__in=list(listed)).values_list("name", "mlflow_updated_ms")
    )
    counts = {"native_prompts_read": 0, "native_changes": 0, "native_outside_moves": 0}
    for name in sorted(n for n, stamp in listed.items() if known.get(n) != stamp):
        found = sync_native_prompts(gateway, name=name)
        counts["native_prompts_read"] += 1
        counts["native_changes"] += found.get("native_changes", 0)
        counts["native_outside_moves"] += found.get("native_outside_moves", 0)
    return counts


def publish_template(name: str) -> str:
    """Bring one chosen template's native prompt in step now (every version published, the
    aliases on the stage holders); returns what happened ("not chosen", "published", "not
    publishable", "failed"). MLflow being unreachable is raised (the task retries); any
    other refusal is audited as ``template.publish_failed``."""
    from registry_ui.core.errors import RegistryError, RegistryUnavailableError
    from registry_ui.registry import NotPublishableError
    from registry_ui.web.models import Template

    template = Template.objects.filter(name=name).first()
    if template is None:
        return "not chosen"
    found = publication(template, list(template.versions.all()))
    if found is None:
        return "not chosen"
    if any(not row["publishable"] for row in found["holders"]):
        return "not publishable"  # the template page says why; nothing to audit each time
    try:
        get_registry().sync_published(name)
        _mirror_published(found["name"])
    except NotPublishableError:
        return "not publishable"
    except RegistryUnavailableError:
        raise
    except RegistryError as error:
        trail.record(
            actor="registry_ui",
            action="template.publish_failed",
            object_type="template",
            object_id=name,
            before=None,
            after={"native_prompt": found["name"], "error": str(error)[:500]},
            source=AuditEvent.Source.WORKER,
        )
        logger.warning("publishing %s as a native prompt failed: %s", name, error)
        return "failed"
    return "published"


def publish_stages(prompts: dict[str, dict]) -> tuple[int, int]:
    """Every chosen template (``publishing_chosen``) brought in step with its native prompt:
    each version the native format can express published, the staging and production
    aliases on the stage holders (registry.sync_published).

    Decided from the mirror and the native prompts just read (two queries): MLflow is
    written (and read) only for templates whose native prompt lacks a version or whose
    aliases differ. Returns (templates brought in step, templates that cannot be published
    because a stage holder cannot be).
    """
    from registry_ui.core.native import published_name
    from registry_ui.registry import NotPublishableError
    from registry_ui.web.models import TemplateVersion

    rule = getattr(settings, "NATIVE_PUBLISH", "none")
    rows = TemplateVersion.objects.filter(missing_since__isnull=True)
    if rule != "all":  # the templates whose metadata asks, and those the prefix names
        wanted = Q(template_id__in=rows.filter(metadata__publish_native=True).values("template"))
        if rule.startswith("prefix:"):
            wanted |= Q(template__name__startswith=rule[len("prefix:") :])
        rows = rows.filter(wanted)
    by_template: dict[str, list[TemplateVersion]] = {}
    for row in rows.select_related("template").defer("template__registered_model_name"):
        by_template.setdefault(row.template.name, []).append(row)
    native: dict[str, dict[str, int]] = {}
    for prompt, semver, number in NativePromptVersion.objects.filter(
        prompt__name__in=[published_name(name) for name in by_template]
    ).values_list("prompt__name", "semver", "number"):
        native.setdefault(prompt, {})[semver] = number
    published = refused = 0
    registry = get_registry()
    for template, versions in sorted(by_template.items()):
        if not publishing_chosen(template, _deciding(versions).metadata):
            continue
        holders = {v.stage: v for v in versions if v.stage in ("staging", "production")}
        if any(not native_form(row)[0] or row.tampered_at for row in holders.values()):
            refused += 1
            continue
        target = published_name(template)
        have = native.get(target, {})
        missing = [
            v for v in versions if v.version not in have and not v.tampered_at and native_form(v)[0]
        ]
        by_number = {str(number): semver for semver, number in have.items()}
        aliases = prompts.get(target, {}).get("aliases", {})
        wanted = {alias: row.version for alias, row in holders.items()}
        in_step = {a: by_number.get(str(n)) for a, n in aliases.items() if a in wanted}
        stray = any(a in ("staging", "production") and a not in wanted for a in aliases)
        if not missing and in_step == wanted and not stray:
            continue
        try:
            registry.sync_published(template)
            published += 1
        except NotPublishableError:
            refused += 1
            continue
        _mirror_published(target)
    return published, refused


def publishing_wanted(name: str, rows) -> bool:
    """Whether versions the mirror just added to a template are to be published: the
    template is chosen (by the setting, the new versions' metadata, or an older version's:
    its native prompt exists)."""
    from registry_ui.core.native import published_name

    if not rows:
        return False
    if publishing_chosen(name, rows[-1].metadata):
        return True
    if getattr(settings, "NATIVE_PUBLISH", "none") != "none":
        return False
    return NativePromptVersion.objects.filter(prompt__name=published_name(name)).exists()


def _mirror_published(target: str) -> None:
    """The published prompt as MLflow now has it, so the pages show its aliases at once
    (two calls, only for a prompt just written)."""
    sync_native_prompts(name=target)


def _mirror(name: str, info: dict, versions: list[NativeVersion]):
    semvers = derive_semvers(versions)
    row, created = NativePrompt.objects.get_or_create(name=name)
    cases_before = None if created else (row.tags or {}).get(CASES_TAG)
    row.description = info.get("description", "")
    row.tags = info.get("tags", {})
    row.aliases = info.get("aliases", {})
    row.synced_at = timezone.now()
    row.mlflow_updated_ms = info.get("updated_ms")
    row.save()
    known = {v.number: v for v in row.versions.all()}
    added = []
    touched: list[NativePromptVersion] = []  # new or changed: their test cases are run
    for version in versions:
        values = {
            "semver": semvers[version.number],
            "kind": version.kind,
            "template": list(version.template) if version.is_chat else version.template,
            "variables": version.variables,
            "model_config": version.model_config,
            "response_format": version.response_format,
            "commit_message": version.commit_message or "",
            "tags": version.tags,
            "created_at": version.created_at,
            "created_by": version.created_by or "",
        }
        existing = known.get(version.number)
        if existing is None:
            touched.append(
                NativePromptVersion.objects.create(prompt=row, number=version.number, **values)
            )
            added.append(f"{values['semver']} (MLflow {version.number})")
        elif any(getattr(existing, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(existing, key, value)
            existing.save()
            touched.append(existing)
    gone = set(known) - {v.number for v in versions}
    if gone:
        row.versions.filter(number__in=gone).delete()
    if not created and cases_before != row.tags.get(CASES_TAG):  # the prompt's own cases
        touched = [v for v in row.versions.all() if v.number not in gone]
    return row, created, added, touched


def _governed(aliases: dict[str, str], rule: Governance) -> dict[str, str]:
    return {alias: str(number) for alias, number in aliases.items() if alias in rule.aliases}


def _check_aliases(gateway, name: str, rule: Governance) -> int:
    """Flag (and audit) governed aliases MLflow has elsewhere; move them back if asked."""
    row = NativePrompt.objects.get(name=name)
    if not row.governed:
        return 0
    actual = _governed(row.aliases, rule)
    accepted = {a: n for a, n in row.governed_aliases.items() if a in rule.aliases}
    moved = {
        alias: (accepted.get(alias), actual.get(alias))
        for alias in set(actual) | set(accepted)
        if accepted.get(alias) != actual.get(alias)
    }
    if not moved:
        if row.outside_alias_change:
            row.outside_alias_change = ""
            row.save(update_fields=["outside_alias_change"])
        return 0
    text = "; ".join(
        f"{alias} is on {_number(now)} in MLflow, registry_ui accepted {_number(was)}"
        for alias, (was, now) in sorted(moved.items())
    )
    if row.outside_alias_change == text:
        return 0  # already flagged and audited
    with trail.atomic():
        row.outside_alias_change = text
        row.save(update_fields=["outside_alias_change"])
        _audit(
            "mlflow",
            "native_prompt.alias_moved_outside",
            name,
            {a: was for a, (was, _) in moved.items()},
            {a: now for a, (_, now) in moved.items()},
            source=AuditEvent.Source.EXTERNAL,
        )
    if rule.revert_outside_moves:
        for alias, (was, _now) in sorted(moved.items()):
            if was is None:
                gateway.delete_native_alias(name, alias)
            else:
                gateway.set_native_alias(name, alias, was)
        with trail.atomic():
            row.aliases = {**{a: n for a, n in row.aliases.items() if a not in moved}, **accepted}
            row.outside_alias_change = ""
            row.save(update_fields=["aliases", "outside_alias_change"])
            _audit("registry_ui", "native_prompt.alias_restored", name, None, accepted)
    get_registry().invalidate(name)
    return 1


def _number(number) -> str:
    return f"version {number}" if number else "no version"


# -- adoption (manage.py import_prompts) -----------------------------------------------------


def adopt_prompts(*, prefix: str = "", dry_run: bool = False, actor: str = "import_prompts"):
    """Take native prompts under governance; returns the lines saying what was (or would be)
    done. Idempotent: a second run finds nothing to do; a prompt changed in MLflow since
    the last run is brought up to date (new versions tagged and mirrored)."""
    gateway = get_registry().gateway
    prompts, versions = gateway.native_versions_all(prefix=prefix)
    rule = governance()
    lines: list[str] = []
    for name, info in sorted(prompts.items()):
        found = versions.get(name, [])
        semvers = derive_semvers(found)
        untagged = [v for v in found if v.semver != semvers[v.number]]
        row = NativePrompt.objects.filter(name=name).first()
        adopting = row is None or row.adopted_at is None
        if not untagged and not adopting and row.versions.count() == len(found):
            continue
        verb = "would" if dry_run else "did"
        for version in untagged:
            lines.append(
                f"{name}: {verb} tag MLflow version {version.number} as "
                f"{semvers[version.number]} ({version.kind}, created "
                f"{_when(version)} by {version.created_by or 'unknown (MLflow keeps no user)'})"
            )
        if adopting:
            aliases = _governed(info["aliases"], rule) or {}
            shown = ", ".join(f"{a} -> {semvers[int(n)]}" for a, n in sorted(aliases.items()))
            lines.append(f"{name}: {verb} adopt, keeping {shown or 'no governed alias'}")
        if dry_run:
            continue
        for version in untagged:
            gateway.set_native_version_tag(
                name, version.number, SEMVER_TAG, semvers[version.number]
            )
        with trail.atomic():
            row, _created, added, touched = _mirror(name, info, found)
            if adopting:
                row.governed = True
                row.governed_aliases = _governed(info["aliases"], rule)
                row.adopted_at = timezone.now()
                row.adopted_by = actor
                row.outside_alias_change = ""
                row.save()
                _audit(
                    actor,
                    "native_prompt.adopted",
                    name,
                    None,
                    {
                        "aliases": row.governed_aliases,
                        "versions": {str(n): s for n, s in semvers.items()},
                    },
                    source=AuditEvent.Source.COMMAND,
                )
            elif added:
                _audit(
                    actor,
                    "native_prompt.updated",
                    name,
                    None,
                    {"versions": added},
                    source=AuditEvent.Source.COMMAND,
                )
                lines.append(f"{name}: mirrored {', '.join(added)}")
        native_checks.run_changed(touched, actor=actor)
        get_registry().invalidate(name)
    return lines


def _when(version: NativeVersion) -> str:
    return version.created_at.isoformat(timespec="seconds") if version.created_at else "(unknown)"


# -- governed alias moves ----------------------------------------------------------------


class AliasRequestError(ValueError):
    """A request that cannot be filed or carried out; says why."""


def file_alias_request(
    user,
    *,
    prompt: str,
    version: str,
    alias: str,
    reason: str = "",
    bump_override: str = "",
    checks_override: str = "",
) -> NativeAliasRequest:
    """File a move of a governed alias to a version (semantic version or MLflow number)."""
    permissions.require(user, "request_promotion", f"moving {alias} of {prompt}")
    row = NativePrompt.objects.filter(name=prompt).first()
    if row is None:
        raise AliasRequestError(f"{prompt!r} is not a mirrored native prompt: run a sync first")
    rule = governance()
    if not row.governed:
        raise AliasRequestError(
            f"{prompt!r} is not governed: adopt it with manage.py import_prompts, or set "
            "NATIVE_PROMPTS_GOVERNED"
        )
    if alias not in rule.aliases:
        raise AliasRequestError(
            f"{alias!r} is not a governed alias ({', '.join(rule.aliases)}); move it in MLflow"
        )
    target = _version_row(row, version)
    holder = row.governed_aliases.get(alias)
    if holder and int(holder) == target.number:
        raise AliasRequestError(f"{alias} of {prompt} is already on {target.semver}")
    problem = _bump_problem(row, holder, target)
    if problem and not bump_override.strip():
        raise AliasRequestError(
            f"{problem}; a reviewer may accept it with a reason (bump_override)"
        )
    failing = native_checks.failing_now(target)
    if failing and not checks_override.strip():
        raise AliasRequestError(
            f"{target.semver}'s test cases do not pass ({failing}): fix the version, or "
            "accept it with a reason (checks_override)"
        )
    with trail.atomic():
        if NativeAliasRequest.objects.filter(prompt=row, alias=alias, state="open").exists():
            raise AliasRequestError(f"a request to move {alias} of {prompt} is open already")
        request = NativeAliasRequest.objects.create(
            prompt=row,
            number=target.number,
            semver=target.semver,
            alias=alias,
            expected_holder=holder or "",
            requested_by=user.username,
            reason=reason,
            bump_override=bump_override.strip(),
            checks_override=checks_override.strip() if failing else "",
        )
        _audit(
            user.username,
            "native_alias.requested",
            prompt,
            {alias: holder},
            {
                alias: str(target.number),
                "semver": target.semver,
                "reason": reason,
                "bump_override": request.bump_override,
                "checks_override": request.checks_override,
            },
            source=AuditEvent.Source.DASHBOARD,
        )
    _announce(request.pk, "filed")
    return request


def _announce(request_id: int, event: str) -> None:
    """After the commit: the reviews domain emails who may act, or the requester."""
    transaction.on_commit(
        lambda: signals.native_request_event.send(
            sender=NativeAliasRequest, request_id=request_id, event=event
        )
    )


def approve_alias_request(user, request_id: int, *, send=None) -> NativeAliasRequest:
    """Approve; once APPROVALS_REQUIRED[alias] reviewers have, the alias is moved after the
    commit: by ``send(request_id)`` (the dashboard hands the worker task's ``delay``), or
    here and now without one."""
    request = NativeAliasRequest.objects.select_related("prompt").get(pk=request_id)
    permissions.require(user, "approve_promotion", f"approving {request.alias} of {request.prompt}")
    if request.state != NativeAliasRequest.State.OPEN:
        raise AliasRequestError(f"the request is {request.state}, not open")
    if user.username == request.requested_by:
        raise AliasRequestError("the requester cannot approve their own request (four eyes)")
    with trail.atomic():
        request = NativeAliasRequest.objects.select_for_update().get(pk=request_id)
        if user.username in request.approvals:
            return request
        request.approvals = [*request.approvals, user.username]
        request.save(update_fields=["approvals"])
        _audit(
            user.username,
            "native_alias.approved",
            request.prompt.name,
            None,
            {"request": request.pk, "alias": request.alias, "version": request.semver},
            source=AuditEvent.Source.DASHBOARD,
        )
    if len(request.approvals) >= _approvals_required(request.alias):
        transaction.on_commit(lambda: (send or execute_alias_request)(request.pk))
    else:
        _announce(request.pk, "approved")  # the reviewers still to approve are asked again
    return request


def execute_alias_request(request_id: int) -> NativeAliasRequest:
    """Move the alias in MLflow if it still holds what the request expected; safe to re-run."""
    request = NativeAliasRequest.objects.select_related("prompt").get(pk=request_id)
    if request.state != NativeAliasRequest.State.OPEN:
        return request
    gateway = get_registry().gateway
    name, alias = request.prompt.name, request.alias
    version = request.prompt.versions.filter(number=request.number).first()
    if version is None:
        return _finish(
            request,
            NativeAliasRequest.State.FAILED,
            f"MLflow version {request.number} of {name} is gone from MLflow: not moved",
        )
    failing = native_checks.failing_before_move(version, actor="registry_ui")
    if failing and not request.checks_override:
        return _finish(
            request,
            NativeAliasRequest.State.FAILED,
            f"{request.semver}'s test cases no longer pass ({failing}): not moved",
        )
    holder = gateway.native_alias_map(name).get(alias)
    if holder == str(request.number):
        pass  # done by an earlier run that stopped before recording it
    elif (holder or "") != request.expected_holder:
        return _finish(
            request,
            NativeAliasRequest.State.FAILED,
            f"{alias} of {name} is on {_number(holder)} in MLflow, not "
            f"{_number(request.expected_holder)} as when the request was filed: not moved",
        )
    else:
        gateway.set_native_alias(name, alias, request.number)
    get_registry().invalidate(name)
    with trail.atomic():
        prompt = NativePrompt.objects.select_for_update().get(pk=request.prompt_id)
        prompt.governed_aliases = {**prompt.governed_aliases, alias: str(request.number)}
        prompt.aliases = {**prompt.aliases, alias: str(request.number)}
        prompt.save(update_fields=["governed_aliases", "aliases"])
    return _finish(request, NativeAliasRequest.State.DONE, f"{alias} moved to {request.semver}")


def _finish(request: NativeAliasRequest, state: str, result: str) -> NativeAliasRequest:
    with trail.atomic():
        request.state = state
        request.result = result
        request.finished_at = timezone.now()
        request.save(update_fields=["state", "result", "finished_at"])
        _audit(
            "registry_ui",
            "native_alias.moved"
            if state == NativeAliasRequest.State.DONE
            else "native_alias.failed",
            request.prompt.name,
            {request.alias: request.expected_holder or None},
            {request.alias: str(request.number), "request": request.pk, "result": result},
            source=AuditEvent.Source.WORKER,
        )
        _announce(request.pk, str(state))
    return request


# The requests page lists native alias moves beside the templates' requests, newest first:
# open ones are few (one per governed alias at most); the other tabs show this many.
ALIAS_REQUESTS_SHOWN = 100


def alias_requests_waiting_for(user, requests=None):
    """Open alias requests this user may approve now: a reviewer, not the requester, not
    approved by them yet (the requests page's "waiting for me" and the header's count)."""
    if requests is None:
        requests = NativeAliasRequest.objects.all()
    if not permissions.may_review(user):
        return requests.none()
    name = user.get_username()
    return (
        requests.filter(state=NativeAliasRequest.State.OPEN)
        .exclude(requested_by=name)
        .exclude(_approved_by(name))
    )


def _approved_by(name: str):
    """``approvals`` (a JSON list of usernames) holds ``name``: JSON containment on
    PostgreSQL; SQLite has no containment lookup, so its json_each is asked."""
    if connection.vendor == "postgresql":
        return Q(approvals__contains=[name])
    table = connection.ops.quote_name(NativeAliasRequest._meta.db_table)
    return RawSQL(
        f"EXISTS (SELECT 1 FROM json_each({table}.approvals) WHERE json_each.value = %s)",
        [name],
        output_field=BooleanField(),
    )


def alias_requests_for(user, tab: str) -> list[NativeAliasRequest]:
    """One tab of the requests page's native alias moves, each with ``approvals_required``,
    in one query: "waiting" those this user may approve now (alias_requests_waiting_for),
    "mine" those they filed, "open" the open ones, "all" any."""
    rows = NativeAliasRequest.objects.select_related("prompt").order_by("-created_at", "-id")
    if tab == "waiting":
        rows = alias_requests_waiting_for(user, rows)
    elif tab == "open":
        rows = rows.filter(state=NativeAliasRequest.State.OPEN)
    elif tab == "mine":
        rows = rows.filter(requested_by=user.get_username())
    found = list(rows[:ALIAS_REQUESTS_SHOWN])
    for row in found:
        row.approvals_required = _approvals_required(row.alias)
    return found


def _approvals_required(alias: str) -> int:
    required = getattr(settings, "APPROVALS_REQUIRED", {})
    return int(required.get(alias, required.get("production", 2)))


def _version_row(row: NativePrompt, version: str) -> NativePromptVersion:
    found = (
        row.versions.filter(number=int(version)).first()
        if str(version).isdigit()
        else row.versions.filter(semver=str(SemVer.parse(version))).first()
    )
    if found is None:
        raise NotFoundError(f"{row.name} has no version {version}")
    return found


def _bump_problem(row: NativePrompt, holder: str | None, target: NativePromptVersion) -> str:
    """A version whose semantic version is bumped less than its diff from the alias's holder
    needs (possible when a tag set outside registry_ui says so)."""
    if not holder:
        return ""
    current = row.versions.filter(number=int(holder)).first()
    if current is None or target.number < current.number:
        return ""
    changes = native_changes(_as_native(current), _as_native(target))
    required = max((level for level, _ in changes), default=Bump.NONE)
    declared = declared_bump(SemVer.parse(current.semver), SemVer.parse(target.semver))
    if declared >= required:
        return ""
    unmet = "; ".join(reason for level, reason in changes if level > declared)
    return f"{target.semver} is a {declared} bump from {current.semver} but {unmet} ({required})"


def changes_between(old: NativePromptVersion, new: NativePromptVersion) -> list[tuple[str, str]]:
    """Each change from old to new in words with the bump it needs (major, minor, patch),
    most demanding first: what a reviewer reads next to the diff."""
    return [
        (level.name.lower(), reason)
        for level, reason in native_changes(_as_native(old), _as_native(new))
    ]


def _as_native(row: NativePromptVersion) -> NativeVersion:
    template = tuple(row.template) if isinstance(row.template, list) else row.template
    return NativeVersion(
        name=row.prompt.name,
        number=row.number,
        template=template,
        model_config=row.model_config,
        response_format=row.response_format,
    )


def _audit(actor, action, name, before, after, *, source=AuditEvent.Source.EXTERNAL) -> None:
    trail.record(
        actor=actor,
        action=action,
        object_type=OBJECT,
        object_id=name,
        before=before,
        after=after,
        source=source,
    )
