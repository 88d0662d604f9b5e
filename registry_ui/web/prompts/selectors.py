"""Reads for the template pages, from the Django mirror only (never MLflow).

Each selector owns its queries and makes a fixed number of them whatever the number of
rows (tests count them with 1 and with 100 rows)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import CharField, Count, Exists, Max, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, StrIndex, Substr
from django.http import Http404

from registry_ui.core.names import SEPARATOR
from registry_ui.core.semver import Bump, SemVer, declared_bump
from registry_ui.web.audit.history import production_history
from registry_ui.web.display import Crumb
from registry_ui.web.models import (
    AuditEvent,
    MlflowProblem,
    NativePrompt,
    NativePromptVersion,
    PromotionRequest,
    Stage,
    Template,
    TemplateFlag,
    TemplateVersion,
    starts_with,
)
from registry_ui.web.models.prompts import NEWEST_FIRST, OLDEST_FIRST

TEMPLATES_PER_PAGE = 50


# A tag is an entry of a version's metadata "tags" (a list, or one string).
TAG = re.compile(r"[\w .:-]{1,60}")


@dataclass(frozen=True)
class TemplateFilters:
    q: str = ""
    stage: str = ""
    author: str = ""
    tag: str = ""
    folder: str = ""
    sort: str = ""  # "" (by name), "changed" (last change first) or "pending"

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


# How the list may be sorted: the query's value and the words on the page.
SORTS = {"": "name", "changed": "last change", "pending": "pending requests"}


@dataclass
class TemplateRow:
    template: Template
    version_count: int
    production: TemplateVersion | None = None
    staging: TemplateVersion | None = None
    newest_dev: TemplateVersion | None = None
    latest: TemplateVersion | None = None
    pending: list[PromotionRequest] = field(default_factory=list)


def version_tags(version: TemplateVersion | None) -> list[str]:
    tags = (version.metadata or {}).get("tags") if version else None
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, list):
        return [str(tag) for tag in tags if isinstance(tag, str | int | float)]
    return []


def _newest(stage: str | None = None):
    versions = TemplateVersion.objects.filter(template=OuterRef("pk"))
    if stage:
        versions = versions.filter(stage=stage)
    return Subquery(versions.order_by(*NEWEST_FIRST).values("pk")[:1])


def filtered_templates(filters: TemplateFilters):
    templates = Template.objects.all()
    if filters.folder:
        templates = templates.filter(name__startswith=filters.folder + SEPARATOR)
    if filters.q:
        templates = templates.filter(name__icontains=filters.q)
    versions = TemplateVersion.objects.filter(template=OuterRef("pk"))
    if filters.stage:
        templates = templates.filter(Exists(versions.filter(stage=filters.stage)))
    if filters.author:
        author = Q(author=filters.author) | Q(registered_by=filters.author)
        templates = templates.filter(Exists(versions.filter(author)))
    if filters.tag:
        # JSON containment is PostgreSQL only; the key's JSON text works on SQLite too. The
        # quotes make "ai" match the tag "ai" and not "ai-tools" (TAG allows no quote).
        tagged = Q(metadata__tags__icontains=f'"{filters.tag}"') | Q(
            metadata__tags__iexact=filters.tag
        )
        templates = templates.filter(Exists(versions.filter(tagged)))
    if filters.sort == "changed":
        # The newest version's registration, or the template's own creation without one,
        # kept on the row by the mirror (Template.changed_at, indexed with the name).
        return templates.order_by("-changed_at", "name")
    if filters.sort == "pending":
        return PendingFirst(templates)
    return templates.order_by("name")


class PendingFirst:
    """The templates with open requests first (most first, then by name), then the rest by
    name: what ``Paginator`` pages through for the list sorted by pending requests.

    Open requests are few whatever the registry's size, so they are counted once (one small
    query) and their templates read by id; the rest is the name index read from an offset,
    as the list by name is. Ordering every template by a count of its requests would read
    every template and its requests for each page.
    """

    def __init__(self, templates):
        self.templates = templates
        counts = dict(
            PromotionRequest.objects.filter(
                status__in=PromotionRequest.ACTIVE, template__isnull=False
            )
            .order_by()
            .values("template")
            .annotate(n=Count("pk"))
            .values_list("template", "n")
        )
        self._counts = counts
        self._first: list[Template] | None = None

    def first(self) -> list[Template]:
        """The matching templates with open requests, most first, then by name."""
        if self._first is None:
            found = list(self.templates.filter(pk__in=list(self._counts)).order_by("name"))
            for template in found:
                template.pending_count = self._counts[template.pk]
            found.sort(key=lambda t: -t.pending_count)  # stable: by name within a count
            self._first = found
        return self._first

    def count(self) -> int:
        return self.templates.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self[index : index + 1][0]
        start, stop = index.start or 0, index.stop
        first = self.first()
        shown = first[start:stop]
        if stop is not None and stop <= len(first):
            return shown
        rest = self.templates.exclude(pk__in=list(self._counts)).order_by("name")
        rest_start = max(start - len(first), 0)
        rest_stop = None if stop is None else stop - len(first)
        return shown + list(rest[rest_start:rest_stop])


def template_list(filters: TemplateFilters, page_number) -> tuple:
    """One page of templates, each with its production, staging, newest dev and latest
    version and its open requests: five queries (count, page, per-template figures,
    versions, requests), whatever the number of templates or versions."""
    page = Paginator(filtered_templates(filters), TEMPLATES_PER_PAGE).get_page(page_number)
    rows = {t.pk: TemplateRow(t, 0) for t in page.object_list}
    if not rows:
        return page, []
    # Annotated for the page's templates only: counting and sorting the versions of every
    # matching template just to show fifty of them costs more than this second query.
    figures = (
        Template.objects.filter(pk__in=rows)
        .annotate(version_count=Count("versions"), latest_id=_newest(), dev_id=_newest(Stage.DEV))
        .values_list("pk", "version_count", "latest_id", "dev_id")
    )
    latest, newest_dev = {}, {}
    for pk, count, latest_id, dev_id in figures:
        rows[pk].version_count = count
        latest[latest_id] = pk
        newest_dev[dev_id] = pk
    # template_id first, outside the OR: the foreign key's index finds the page's versions.
    versions = (
        TemplateVersion.objects.filter(template_id__in=rows)
        .filter(
            Q(stage__in=[Stage.STAGING, Stage.PRODUCTION])
            | Q(pk__in=[pk for pk in (*latest, *newest_dev) if pk is not None])
        )
        .only("id", "template_id", "version", "stage", "metadata")
        .order_by()  # not the model's ordering: it joins the template table to sort by name
    )
    for version in versions:
        row = rows[version.template_id]
        if version.stage == Stage.PRODUCTION:
            row.production = version
        elif version.stage == Stage.STAGING:
            row.staging = version
        if version.pk in latest:
            row.latest = version
        if version.pk in newest_dev:
            row.newest_dev = version
    pending = (
        PromotionRequest.objects.filter(template_id__in=rows, status__in=PromotionRequest.ACTIVE)
        .select_related("version")
        .only("id", "template_id", "status", "target_stage", "version__version")
    )
    for request in pending.order_by("created_at", "id"):
        rows[request.template_id].pending.append(request)
    return page, list(rows.values())


AUTHORS_CACHE_SECONDS = 60


def authors() -> list[str]:
    """Every version author, for the list's filter. Kept a minute in the cache: the DISTINCT
    reads every version row (no index on author), and a new author can wait a minute."""
    key = f"registry_ui:dashboard:authors:{connection.alias}:{connection.settings_dict['NAME']}"
    return cache.get_or_set(key, _authors, AUTHORS_CACHE_SECONDS)


def _authors() -> list[str]:
    return list(
        TemplateVersion.objects.exclude(author="")
        .order_by("author")
        .values_list("author", flat=True)
        .distinct()
    )


FOLDERS_CACHE_SECONDS = 60


def subfolders(folder: str) -> list[Crumb]:
    """The folders directly inside ``folder``, kept a minute in the cache under the
    templates' count, newest id, last change and first and last names: a template added or
    removed changes the key at once; a rename shows within the minute. Working the folders
    out cuts every name under the folder (5 ms at 10,000 templates); the key is one pass
    over an index."""
    state = Template.objects.aggregate(
        n=Count("pk"),
        newest=Max("pk"),
        changed=Max("changed_at"),
        low=Min("name"),
        high=Max("name"),
    )
    db = f"{connection.alias}:{connection.settings_dict['NAME']}"
    # Any text, hashed: a cache key of safe characters and length.
    digest = hashlib.sha256(f"{db}\n{sorted(state.items())}\n{folder}".encode()).hexdigest()
    key = f"registry_ui:dashboard:folders:{digest}"
    return cache.get_or_set(key, lambda: _subfolders(folder), FOLDERS_CACHE_SECONDS)


def _subfolders(folder: str) -> list[Crumb]:
    """The database cuts each name under ``folder`` at its next "/" and returns the
    distinct first segments (a few rows, not every name)."""
    prefix = folder + SEPARATOR if folder else ""
    rest = Substr("name", len(prefix) + 1)
    cut = StrIndex(rest, Value(SEPARATOR))
    segments = (
        Template.objects.filter(name__startswith=prefix)
        .annotate(cut=cut)
        .filter(cut__gt=1)
        .annotate(segment=Substr(rest, 1, cut - 1))
        .order_by("segment")
        .values_list("segment", flat=True)
        .distinct()
    )
    return [Crumb(segment, prefix + segment) for segment in segments]


@dataclass
class LineageEntry:
    """One line of a template's timeline: a version registered, or a stage change."""

    kind: str  # "version" or "stage"
    at: datetime | None
    version: str
    actor: str = ""
    bump: str = ""  # for "version": the bump from the version before it
    from_stage: str = ""
    to_stage: str = ""
    source: str = ""
    why: str = ""
    request_id: int | None = None
    approved_by: list[str] = field(default_factory=list)
    seq: int = 0
    request_kind: str = ""  # promote, rollback or release: the request that made the move

    @property
    def rollback(self) -> bool:
        return self.request_kind == "rollback" and self.to_stage == Stage.PRODUCTION


def get_template(name: str) -> Template:
    try:
        return Template.objects.get(name=name)
    except Template.DoesNotExist:
        raise Http404(f"no template named {name!r} in the mirror") from None


def open_mlflow_problem_count() -> int:
    return MlflowProblem.objects.filter(resolved_at__isnull=True).count()


def open_mlflow_problems() -> list[MlflowProblem]:
    return list(MlflowProblem.objects.filter(resolved_at__isnull=True)[:500])


def open_flags(template: Template) -> list[TemplateFlag]:
    return list(template.flags.filter(resolved_at__isnull=True).order_by("-created_at")[:50])


def versions_of(template: Template) -> list[TemplateVersion]:
    return list(template.versions.order_by(*OLDEST_FIRST))


def open_requests(template: Template) -> list[PromotionRequest]:
    return list(
        PromotionRequest.objects.filter(template=template, status__in=PromotionRequest.ACTIVE)
        .select_related("version", "requester")
        .order_by("-created_at", "-id")
    )


def lineage(template: Template, versions: list[TemplateVersion]) -> list[LineageEntry]:
    """Every version (author, time, bump type) and every stage change (who, when, why),
    newest first: two queries over the audit trail.

    A stage change carried out by a request is followed by its "request.executed" event
    naming the same version and target, which gives the why and the request.
    """
    entries: list[LineageEntry] = []
    previous = None
    for version in versions:
        current = SemVer.parse(version.version)
        bump = declared_bump(previous, current) if previous else Bump.NONE
        entries.append(
            LineageEntry(
                "version",
                version.created_at,
                version.version,
                actor=version.author or version.registered_by,
                bump="first version" if previous is None else str(bump),
            )
        )
        previous = current
    prefix = f"{template.name}@"
    moves = AuditEvent.objects.filter(
        starts_with("object_id", prefix),
        object_type="template_version",
        action="version.stage_changed",
    ).values_list("seq", "at", "actor", "source", "object_id", "before", "after")
    # The template's own requests' events (an index on object_id), not every executed
    # request's JSON read to find its template (that grew with the registry's history).
    requests = (
        PromotionRequest.objects.filter(template=template)
        .annotate(key=Cast("pk", CharField()))
        .values("key")
    )
    # The action is tested here, not in SQL: with it there, SQLite prefers the index of every
    # executed request to this one (a template's requests have a few events each).
    executed = [
        (seq, object_id, after)
        for seq, object_id, action, after in AuditEvent.objects.filter(
            object_type="promotion_request", object_id__in=requests
        ).values_list("seq", "object_id", "action", "after")
        if action == "request.executed"
    ]
    changes: list[LineageEntry] = []
    for seq, at, actor, source, object_id, before, after in moves:
        changes.append(
            LineageEntry(
                "stage",
                at,
                object_id[len(prefix) :],
                actor=actor,
                from_stage=_stage(before),
                to_stage=_stage(after),
                source=source,
                seq=seq,
            )
        )
    changes.sort(key=lambda entry: entry.seq)
    for seq, object_id, after in sorted(executed, key=lambda row: row[0]):
        after = after or {}
        for change in reversed(changes):
            if (
                change.seq < seq
                and change.request_id is None
                and change.version == after.get("version")
                and change.to_stage == after.get("target_stage")
            ):
                change.request_id = int(object_id) if object_id.isdigit() else None
                change.why = str(after.get("justification") or "")
                change.approved_by = [str(name) for name in after.get("approved_by") or []]
                change.request_kind = str(after.get("kind") or "")
                break
    entries += changes
    return sorted(entries, key=_timeline_key, reverse=True)


def _stage(value) -> str:
    return str(value.get("stage", "")) if isinstance(value, dict) else ""


def _timeline_key(entry: LineageEntry):
    # Versions registered outside the dashboard may lack a time: they sort first (oldest).
    return (entry.at is not None, entry.at or datetime.min, entry.kind == "stage", entry.seq)


def default_comparison(
    template: Template, versions: list[TemplateVersion], requests: list[PromotionRequest]
) -> tuple[TemplateVersion | None, TemplateVersion | None]:
    """The version under review against the one it would replace; else the latest against
    production (or the version before it)."""
    if not versions:
        return None, None
    by_stage = {v.stage: v for v in versions if v.stage in (Stage.STAGING, Stage.PRODUCTION)}
    reviewed = next((r for r in requests if r.version_id), None)
    if reviewed is not None:
        new = next(v for v in versions if v.pk == reviewed.version_id)
        old = by_stage.get(reviewed.target_stage)
        if old is None or old.pk == new.pk:
            old = TemplateVersion.objects.before(new).first()
        return old, new
    new = versions[-1]
    old = by_stage.get(Stage.PRODUCTION)
    if old is None or old.pk == new.pk:
        old = TemplateVersion.objects.before(new).first()
    return old, new


def last_production_before(
    template: Template, versions: list[TemplateVersion]
) -> TemplateVersion | None:
    """The version that held production last before the one holding it now: what the
    template page's "Roll back" offers first. From the versions already read, and the
    audit trail's periods (one query); None when no version held production before."""
    held = [v for v in versions if v.was_production and v.stage != Stage.PRODUCTION]
    if not held:
        return None
    left = {}
    for period in production_history(template.name):
        if period["until"] is not None:
            left[period["version"]] = period["until"]
    return max(
        held,
        key=lambda v: (
            left.get(v.version) is not None,
            left.get(v.version),
            v.major,
            v.minor,
            v.patch,
        ),
    )


def latest_version(name: str) -> TemplateVersion | None:
    return (
        TemplateVersion.objects.filter(template__name=name)
        .select_related("template")
        .order_by(*NEWEST_FIRST)
        .first()
    )


# -- native prompts ---------------------------------------------------------------------------

NATIVE_PER_PAGE = 100
NATIVE_IN_TEMPLATE_LIST = 10


def native_prompts(q: str = ""):
    """Native prompts by name (those whose name holds ``q``), each annotated with its number
    of versions and its newest version's semantic version: one query for a page of them,
    whatever the number of versions."""
    newest = NativePromptVersion.objects.filter(prompt=OuterRef("pk")).order_by("-number")
    rows = NativePrompt.objects.annotate(
        version_count=Count("versions"), latest=Subquery(newest.values("semver")[:1])
    ).order_by("name")
    return rows.filter(name__icontains=q) if q else rows


def native_page(q: str, page_number):
    return Paginator(native_prompts(q), NATIVE_PER_PAGE).get_page(page_number)


def native_matches(filters: TemplateFilters) -> list | None:
    """The native prompts the templates list shows beside its templates (the first
    NATIVE_IN_TEMPLATE_LIST + 1, to say there are more), or None when the filters are ones
    native prompts do not have (a folder, a stage, an author, a tag)."""
    if filters.folder or filters.stage or filters.author or filters.tag:
        return None
    return list(native_prompts(filters.q)[: NATIVE_IN_TEMPLATE_LIST + 1])
