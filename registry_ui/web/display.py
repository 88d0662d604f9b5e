"""How the app's objects are named on pages: links, breadcrumbs, moments and durations.

Built without reverse() per row: list pages call these for every row."""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from registry_ui.core.names import SEPARATOR

CLOSE = timedelta(minutes=2)  # events closer than this are shown with seconds


@dataclass(frozen=True)
class Crumb:
    label: str
    folder: str  # the folder this crumb opens ("" for the root)


def crumbs(name: str) -> list[Crumb]:
    """``a/b/c`` -> a (folder "a"), b (folder "a/b"); the leaf is the template itself."""
    parts = name.split(SEPARATOR)
    return [
        Crumb(part, SEPARATOR.join(parts[: position + 1]))
        for position, part in enumerate(parts[:-1])
    ]


def folder_crumbs(folder: str) -> list[Crumb]:
    """Every folder on the way to ``folder``, itself included."""
    parts = folder.split(SEPARATOR) if folder else []
    return [Crumb(part, SEPARATOR.join(parts[: i + 1])) for i, part in enumerate(parts)]


@functools.cache
def _template_url_prefix() -> str:
    return reverse("template_detail", args=["_"])[:-1]


def template_url(name: str) -> str:
    """reverse("template_detail", args=[name]), without reversing for each of a page's rows:
    names are letters, digits, "-", "_" and "/", which a URL carries as they are."""
    return _template_url_prefix() + name


def version_url(name: str, version: str) -> str:
    return f"{template_url(name)}/-/versions/{version}"


@functools.cache
def _request_url_parts() -> tuple[str, str]:
    head, _, tail = reverse("request_detail", args=[987654321]).partition("987654321")
    return head, tail


def moment(at: datetime | None, *, seconds: bool = False) -> tuple[str, str]:
    """A time as a page's <time> element shows it, worked out once: ISO 8601 (the date
    filter's "c") and the text, "2026-12-04 21:48 UTC" (seconds too when asked), in the
    current time zone and naming it; ("", "") for no time. The page's script
    (static/registry_ui/pages.js) shows it in the viewer's zone."""
    if at is None:
        return "", ""
    local = timezone.localtime(at) if timezone.is_aware(at) else at
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    zone = local.tzname() or "UTC"
    return local.isoformat(), f"{local.strftime(shape)} {zone}"


def close_together(times: list[datetime | None], within: timedelta = CLOSE) -> list[bool]:
    """For each time, whether another in the list is within ``within`` of it: those are
    shown with seconds, so events a few seconds apart read in their order."""
    known = sorted((t, i) for i, t in enumerate(times) if t is not None)
    close = [False] * len(times)
    for (a, i), (b, j) in itertools.pairwise(known):
        if b - a < within:
            close[i] = close[j] = True
    return close


def duration(span: timedelta | None) -> str:
    """How long, in the largest unit that says it: "3 days", "5 hours", "12 minutes"."""
    if span is None:
        return ""
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


def request_url(pk: int) -> str:
    """reverse("request_detail", args=[pk]), without reversing for each of a page's rows."""
    head, tail = _request_url_parts()
    return f"{head}{pk}{tail}"


def json_text(value) -> str:
    """One line when short, indented when long (shown escaped, in a <pre>)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return (
        text if len(text) <= 60 else json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)
    )


@dataclass(frozen=True)
class GateWords:
    """A request's metric gate or test cases in plain words: a status class, a short
    verdict to read at a glance, and the figures behind it (shown on demand)."""

    status: str  # pass, fail, no_data, no_target, none: the CSS class
    verdict: str
    figures: str = ""


GATE_LABELS = {
    "pass": "Metric gate passes",
    "fail": "Metric gate fails",
    "no_data": "No data yet",
    "no_target": "No target set",
}


def gate_words(gate) -> GateWords | None:
    """``PromotionRequest.gate`` ({"status", "detail"}, written by core.policy.evaluate_gate)
    as words: "no_target: the template sets no engagement_target" reads "No target set: add
    engagement_target to the metadata to use the metric gate"."""
    if not isinstance(gate, dict) or not gate.get("status"):
        return None
    status, detail = str(gate["status"]), str(gate.get("detail") or "")
    label = GATE_LABELS.get(status, status.replace("_", " ").capitalize())
    if status == "no_target":
        if "is not a number" in detail:
            return GateWords(status, f"{label}: {detail}; make it a number such as 0.06")
        return GateWords(
            status, f"{label}: add engagement_target to the metadata to use the metric gate"
        )
    if status == "no_data":
        reason = detail.removeprefix("no data: ")
        if reason.startswith("no experiment"):
            return GateWords(status, f"{label}: no experiment has measured this version")
        needed, _, figures = reason.partition("; ")
        return GateWords(status, f"{label}: {needed}", figures)
    why, _, figures = detail.partition(": ")
    return GateWords(status, f"{label}: {why}" if why else label, figures)


def checks_words(checks) -> GateWords | None:
    """``PromotionRequest.checks`` (the test cases recorded when it was filed) as words."""
    if not isinstance(checks, dict) or not checks.get("status"):
        return None
    status, detail = str(checks["status"]), str(checks.get("detail") or "")
    failing = [str(name) for name in checks.get("failing") or []]
    if status == "pass":
        return GateWords(status, "Test cases pass", detail)
    if status == "fail":
        names = ", ".join(failing) or "some"
        return GateWords(status, f"Test cases fail: {names}", detail)
    return GateWords("none", "No test cases", detail if detail != "no test cases" else "")
