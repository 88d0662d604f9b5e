"""The editor's metadata as fields: the policy's required keys as labelled inputs (metrics
as name and number rows), any other key as a key and value row; JSON stays as an advanced
view. Turns posted fields into the metadata mapping and a mapping back into fields."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from registry_ui.core.checks import KINDS, TEST_CASES_KEY, MetadataPolicy, describe_value

# The design note's keys, as a form labels and explains them (a key the policy adds later is
# labelled with its own name).
LABELS = {
    "author": ("Author", "Who wrote or changed it, e.g. content-team."),
    "purpose": ("Purpose", "What the template does, e.g. Opening hook for entrepreneur posts."),
    "tested_on": (
        "Tested on",
        "The platforms it was tested on, separated by commas, e.g. threads, linkedin.",
    ),
    "performance_metrics": (
        "Expected metrics",
        "One metric per row: its name and a number, e.g. engagement_rate and 0.06.",
    ),
}
KIND_HELP = {
    "str": "Text.",
    "str_or_list": "Text; several items separated by commas.",
    "metrics": "One metric per row: its name and a number.",
    "number": "A number, e.g. 0.06.",
    "bool": "Yes or no.",
    "list": 'A JSON list, e.g. ["a", "b"].',
    "mapping": 'A JSON object, e.g. {"key": "value"}.',
    "any": "Text, or any JSON value.",
}
# The design note's keys as JSON examples, for problems found in the JSON view (the policy's
# own hints are written for YAML template files).
JSON_EXAMPLES = {
    "author": '"author": "content-team"',
    "purpose": '"purpose": "Opening hook for entrepreneur posts"',
    "tested_on": '"tested_on": "threads" or ["threads", "linkedin"]',
    "performance_metrics": '"performance_metrics": {"engagement_rate": 0.06}',
}
MARKER = "metadata_fields"  # posted with the fields; absent, the JSON text is the metadata
CASES_MARKER = "case_fields"  # posted with the test cases' small form
AS_JSON = "metadata_as_json"  # the advanced view's checkbox: the JSON text wins


@dataclass
class RequiredField:
    key: str
    kind: str
    label: str
    help: str
    value: str = ""  # the text shown (every kind but metrics)
    rows: list[tuple[str, str]] = field(default_factory=list)  # metrics: (name, number)
    problems: list[str] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        return f"meta:{self.key}"


@dataclass
class CaseFields:
    """One test case as the small form shows it (registry_ui.core.checks reads the case)."""

    name: str = ""
    values: str = ""  # one "variable = value" a line
    contains: str = ""  # one text a line
    max_length: str = ""
    no_leftover_braces: str = ""  # "true", "false" or ""


CASE_FORM_KEYS = {"name", "values", "contains", "max_length", "no_leftover_braces"}


def case_fields(case: Any) -> CaseFields | None:
    """The small form's fields for a case, or None when the form cannot show all of it."""
    if not isinstance(case, dict) or not set(case) <= CASE_FORM_KEYS:
        return None
    values, contains = case.get("values", {}), case.get("contains", [])
    if isinstance(contains, str):
        contains = [contains]
    if not isinstance(values, dict) or not all(isinstance(c, str) for c in contains):
        return None
    braces = case.get("no_leftover_braces")
    return CaseFields(
        name=_as_text(case.get("name", "")),
        values="\n".join(f"{k} = {_as_text(v)}" for k, v in values.items()),
        contains="\n".join(contains),
        max_length=_as_text(case["max_length"]) if "max_length" in case else "",
        no_leftover_braces="" if braces is None else ("true" if braces else "false"),
    )


def _case_from(entry: CaseFields, row: int, problems: list[tuple[str, str]]) -> dict[str, Any]:
    where = f"Test case {row}" + (f" ({entry.name})" if entry.name else "")
    case: dict[str, Any] = {}
    if entry.name:
        case["name"] = entry.name
    values = {}
    for line in entry.values.splitlines():
        if not line.strip():
            continue
        variable, equals, value = line.partition("=")
        if not equals or not variable.strip():
            problems.append(
                (
                    TEST_CASES_KEY,
                    f"{where}, values: write one 'variable = value' a line, not {line.strip()!r}",
                )
            )
            continue
        values[variable.strip()] = _loose(value.strip())
    case["values"] = values
    contains = [line.strip() for line in entry.contains.splitlines() if line.strip()]
    if contains:
        case["contains"] = contains
    if entry.max_length.strip():
        try:
            case["max_length"] = int(entry.max_length)
        except ValueError:
            problems.append(
                (
                    TEST_CASES_KEY,
                    f"{where}: the maximum length {entry.max_length!r} is not a "
                    "whole number, e.g. 500",
                )
            )
    if entry.no_leftover_braces:
        case["no_leftover_braces"] = entry.no_leftover_braces == "true"
    return case


def _cases_from_fields(data, problems: list[tuple[str, str]]) -> tuple[list, list[CaseFields]]:
    columns = [
        data.getlist(f"case:{key}")
        for key in ("name", "values", "contains", "max_length", "no_leftover_braces")
    ]
    cases, shown = [], []
    for row, texts in enumerate(zip(*columns, strict=False), start=1):
        entry = CaseFields(*texts)
        if not any(text.strip() for text in texts):
            continue
        shown.append(entry)
        cases.append(_case_from(entry, row, problems))
    return cases, [*shown, CaseFields()]


@dataclass
class MetadataFields:
    required: list[RequiredField]
    extra: list[tuple[str, str]]  # (key, value as text), a blank row last
    problems: list[tuple[str, str]] = field(default_factory=list)  # (key, message)
    metadata: dict[str, Any] = field(default_factory=dict)  # what the fields say
    # The test cases as a small form, a blank one last; None: they are kept as JSON in the
    # other rows (a case uses more than the form offers: a regex, not_contains, expected).
    cases: list[CaseFields] | None = None

    def problems_of(self, key: str) -> list[str]:
        return [message for k, message in self.problems if k == key]


def _number(text: str) -> int | float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    try:
        return int(text)
    except ValueError:
        return value


def _loose(text: str) -> Any:
    """An extra value: JSON when it reads as a number, true/false, a list or an object;
    otherwise the text itself."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{", '"') or stripped in ("true", "false", "null"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    try:
        return _number(stripped)
    except ValueError:
        return text


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def json_problems(metadata: dict[str, Any], policy: MetadataPolicy) -> list[str]:
    """The policy's problems with metadata typed as JSON, each with a JSON example."""
    said = []
    for problem in policy.check(metadata):
        kind = dict(policy.required)[problem.key]
        wanted = KINDS[kind].description
        example = JSON_EXAMPLES.get(problem.key)
        hint = f", e.g. {example}" if example else ""
        if metadata.get(problem.key) is None:
            said.append(f"metadata.{problem.key} is missing: it must be {wanted}{hint}")
        else:
            found = describe_value(metadata[problem.key])
            said.append(f"metadata.{problem.key} must be {wanted}{hint}; found {found}")
    return said


def wants_json(data) -> bool:
    return bool(data.get(AS_JSON)) or not data.get(MARKER)


def metadata_from_fields(data, policy: MetadataPolicy) -> MetadataFields:
    """The metadata the fields say, and every field-level problem (a row's number, ...)."""
    metadata: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    required = []
    for key, kind in policy.required:
        label, help_text = LABELS.get(key, (key, KIND_HELP.get(kind, "")))
        entry = RequiredField(key, kind, label, help_text)
        name = entry.input_name
        if kind == "metrics":
            metrics: dict[str, int | float] = {}
            names, numbers = data.getlist(f"{name}:name"), data.getlist(f"{name}:value")
            for row, (metric, number) in enumerate(zip(names, numbers, strict=False), start=1):
                metric, number = metric.strip(), number.strip()
                if metric or number:
                    entry.rows.append((metric, number))
                if not metric and not number:
                    continue
                if not metric:
                    problems.append((key, f"{label}, row {row}: the metric needs a name"))
                    continue
                try:
                    metrics[metric] = _number(number)
                except ValueError:
                    said = f"{label}, row {row} ({metric}): {number!r} is not a number, e.g. 0.06"
                    problems.append((key, said))
            if metrics:
                metadata[key] = metrics
        else:
            text = data.get(name, "")
            entry.value = text
            value = _value_of(kind, text.strip())
            if isinstance(value, _Refused):
                problems.append((key, f"{label}: {value.message}"))
            elif value is not None:
                metadata[key] = value
        required.append(entry)
    shown_cases = None
    if data.get(CASES_MARKER):
        cases, shown_cases = _cases_from_fields(data, problems)
        if cases:
            metadata[TEST_CASES_KEY] = cases
    extra = []
    for row, (key, text) in enumerate(
        zip(data.getlist("extra_key"), data.getlist("extra_value"), strict=False), start=1
    ):
        key = key.strip()
        if not key and not text.strip():
            continue
        extra.append((key, text))
        if not key:
            problems.append(("", f"Other metadata, row {row}: the value needs a key"))
        elif key in metadata:
            problems.append((key, f"Other metadata, row {row}: {key} is set above already"))
        else:
            metadata[key] = _loose(text)
    extra.append(("", ""))
    return MetadataFields(required, extra, problems, metadata, shown_cases)


@dataclass
class _Refused:
    message: str


def _value_of(kind: str, text: str) -> Any:
    if not text:
        return None
    if kind == "str_or_list":
        items = [item.strip() for item in text.split(",") if item.strip()]
        return items[0] if len(items) == 1 else items
    if kind == "number":
        try:
            return _number(text)
        except ValueError:
            return _Refused(f"{text!r} is not a number, e.g. 0.06")
    if kind == "bool":
        return text == "true"
    if kind in ("list", "mapping"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            return _Refused(f"not JSON ({error.msg}): {KIND_HELP[kind]}")
    if kind == "any":
        return _loose(text)
    return text


def fields_of(metadata: dict[str, Any] | None, policy: MetadataPolicy) -> MetadataFields:
    """The fields showing ``metadata`` (JSON text that did not parse shows empty fields)."""
    metadata = metadata or {}
    required = []
    for key, kind in policy.required:
        label, help_text = LABELS.get(key, (key, KIND_HELP.get(kind, "")))
        entry = RequiredField(key, kind, label, help_text)
        value = metadata.get(key)
        if kind == "metrics":
            if isinstance(value, dict):
                entry.rows = [(str(k), _as_text(v)) for k, v in value.items()]
        elif kind == "str_or_list" and isinstance(value, list):
            entry.value = ", ".join(_as_text(v) for v in value)
        elif kind == "bool" and isinstance(value, bool):
            entry.value = "true" if value else "false"
        elif value is not None:
            entry.value = _as_text(value)
        required.append(entry)
    taken = {key for key, _ in policy.required}
    cases = _case_rows(metadata.get(TEST_CASES_KEY))
    if cases is not None:
        taken.add(TEST_CASES_KEY)
    extra = [(key, _as_text(value)) for key, value in metadata.items() if key not in taken]
    extra.append(("", ""))
    return MetadataFields(required, extra, cases=cases)


def _case_rows(cases: Any) -> list[CaseFields] | None:
    if cases is None:
        return [CaseFields()]
    if not isinstance(cases, list):
        return None
    shown = [case_fields(case) for case in cases]
    if any(entry is None for entry in shown):
        return None
    return [*shown, CaseFields()]
