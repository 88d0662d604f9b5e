"""How the app's objects are named on pages: links, breadcrumbs and moments.

Built without reverse() per row: list pages call these for every row."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from registry_ui.core.names import SEPARATOR


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


def moment(at: datetime | None) -> tuple[str, str]:
    """A time as the date filter shows it in a page's <time> element, worked out once: ISO 8601
    (the filter's "c") and "Y-m-d H:i", in the current time zone; ("", "") for no time."""
    if at is None:
        return "", ""
    local = timezone.localtime(at) if timezone.is_aware(at) else at
    return local.isoformat(), local.strftime("%Y-%m-%d %H:%M")


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
