"""The render preview: a form built from a version's variables, read back into values.

Pure Python (no Django): the form sends text, and each variable's fields say what it needs:
JSON where a field reaches into it (``{user[name]}``, ``{user.name}``), a number where a format
spec asks for one (``{amount:,.2f}``), a date where it asks for strftime codes
(``{when:%H:%M}``), plain text otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from registry_ui.core.limits import DEFAULT_LIMITS, InputLimits, loads_json
from registry_ui.core.template import ParsedTemplate, TemplateRenderError

TEXT, NUMBER, JSON, DATE = "text", "number", "json", "date"


HINTS = {
    TEXT: "text",
    NUMBER: "a number, e.g. 1234.5",
    JSON: 'JSON, e.g. {"name": "Ann"} or ["a", "b"]',
    DATE: "a date or date-time, e.g. 2026-11-28 or 2026-11-28T14:30",
}


MAX_VALUE_LENGTH = 10_000


MAX_OUTPUT_LENGTH = 50_000


_NUMERIC_TYPES = set("bcdeEfFgGnoxX%")


_STRFTIME = re.compile(r"%[a-zA-Z]")


_INTEGER = re.compile(r"[+-]?\d+")


_ROOT = re.compile(r"\w+")


@dataclass(frozen=True)
class PreviewField:
    name: str
    kind: str

    @property
    def hint(self) -> str:
        return HINTS[self.kind]

    @property
    def multiline(self) -> bool:
        return self.kind == JSON


@dataclass
class Preview:
    """What the form shows: the values typed, an error beside each field, the output."""

    raw: dict[str, str]
    field_errors: dict[str, str] = field(default_factory=dict)
    error: str = ""
    output: str | None = None
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.output is not None


def preview_fields(parsed: ParsedTemplate) -> list[PreviewField]:
    kinds: dict[str, str] = {}
    for each in parsed.fields:
        kinds[each.root] = _stronger(kinds.get(each.root, TEXT), _kind_of(each))
    return [PreviewField(name, kinds.get(name, TEXT)) for name in parsed.variables]


def _kind_of(each) -> str:
    if each.path != each.root:
        return JSON
    spec = each.format_spec
    if "{" in spec or each.conversion:
        return TEXT  # computed at render time, or formatted as the repr/str of the text
    if _STRFTIME.search(spec):
        return DATE
    if spec and (spec[-1] in _NUMERIC_TYPES or "," in spec or "_" in spec):
        return NUMBER
    return TEXT


def _stronger(left: str, right: str) -> str:
    order = (TEXT, NUMBER, DATE, JSON)
    return max(left, right, key=order.index)


def render_preview(
    parsed: ParsedTemplate,
    fields: list[PreviewField],
    raw: Mapping[str, str],
    limits: InputLimits = DEFAULT_LIMITS,
) -> Preview:
    """Read each field's text and render; every problem is kept beside its field.

    The render is bounded (ParsedTemplate.render_bounded): a spec or values that would build
    more than the limits allow are refused before anything is built.
    """
    preview = Preview({f.name: str(raw.get(f.name, "")) for f in fields})
    values: dict[str, Any] = {}
    for each in fields:
        text = preview.raw[each.name]
        try:
            values[each.name] = read_value(each, text)
        except ValueError as error:
            preview.field_errors[each.name] = str(error)
    if preview.field_errors:
        preview.error = "Fix the values marked beside their fields to see the output."
        return preview
    try:
        output = parsed.render_bounded(values, limits)
    except TemplateRenderError as error:
        path = getattr(error, "field", None)
        root = _ROOT.match(path).group() if path and _ROOT.match(path) else None
        if root in preview.raw:
            preview.field_errors[root] = str(error)
            preview.error = "Fix the values marked beside their fields to see the output."
        else:
            preview.error = str(error)
        return preview
    preview.truncated = len(output) > MAX_OUTPUT_LENGTH
    preview.output = output[:MAX_OUTPUT_LENGTH]
    return preview


def read_value(each: PreviewField, text: str) -> Any:
    """The value a field's text stands for; ValueError says what would be accepted."""
    if len(text) > MAX_VALUE_LENGTH:
        raise ValueError(
            f"{len(text):,} characters: at most {MAX_VALUE_LENGTH:,} are accepted in a preview"
        )
    if each.kind == TEXT:
        return text
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"needs a value: {each.hint}")
    if each.kind == NUMBER:
        try:
            return int(stripped) if _INTEGER.fullmatch(stripped) else float(stripped)
        except ValueError:
            raise ValueError(f"{stripped!r} is not a number: write {each.hint}") from None
    if each.kind == DATE:
        try:
            return (
                date.fromisoformat(stripped)
                if len(stripped) == 10
                else datetime.fromisoformat(stripped)
            )
        except ValueError:
            raise ValueError(f"{stripped!r} is not a date: write {each.hint}") from None
    try:
        return loads_json(stripped)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"not JSON at {error.lineno}:{error.colno}: {error.msg}; write {each.hint}"
        ) from None
