"""Checks on a template version: the metadata it must carry and the test cases it must pass.

The design note's best practices, made enforceable:

- **Metadata policy**: the keys every new version carries and the kind of value each holds
  (by default ``author``, ``purpose``, ``tested_on`` and ``performance_metrics``). A version
  that misses one, or holds the wrong kind of value, is refused at registration with every
  problem listed. Versions registered before the policy are only flagged.
- **Test cases**: named sample values and what the rendered text must satisfy (it renders;
  at most N characters; contains or does not contain a text or a regular expression; no
  brace left over; an exact expected output). They are versioned with the template, in its
  metadata under ``test_cases``, so the content hash covers them.
- **Chat templates** (core/messages.py): a case's ``messages`` list puts the same
  expectations on one message's rendered content (``message: 2``, numbered from 1 as every
  message error is, and/or ``role: system``); its ``sample_output`` is an answer a model
  could give (text, as a model returns it) that must be JSON matching the template's
  response format. The answer is checked, not the rendered prompt: a prompt asks for JSON,
  it is not JSON itself.

What a case can make the server do is bounded (docs/security.md, "Limits on input"): its
render by ``ParsedTemplate.render_bounded``; its regular expressions run on RE2, which has no
backtracking and so takes time in proportion to the text's length times the pattern's size
(patterns RE2 cannot run, such as backreferences and lookarounds, are refused when the cases
are read); and a whole run by a budget of steps counted as it goes, so it stops by itself in
any process, a web thread or a worker, with no signal and no timer.

Pure Python: no Django, no MLflow (RE2 through the google-re2 package).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import re2

from registry_ui.core.limits import (
    DEFAULT_LIMITS,
    MAX_METADATA_JSON_LENGTH,
    InputLimits,
    loads_json,
)
from registry_ui.core.messages import ROLES, schema_errors
from registry_ui.core.template import TemplateValidationError, parse_template

# Where a version's test cases live in its metadata (and so in MLflow, with the version).
TEST_CASES_KEY = "test_cases"
MAX_CASE_NAME_LENGTH = 200

# Searches need only where a match is, never its groups: without captures RE2 finds both
# ends with its DFA. Memory: 1 MiB per pattern (its program and its DFA's cache), and the
# google-re2 module keeps the last 128 patterns compiled.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.never_capture = True
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 1 << 20
# A plain text search is linear for long needles; for needles under ~100 characters CPython's
# search may compare each of them at each position of the text.
_FIND_WIDTH = 100


# -- the metadata policy ----------------------------------------------------------------------


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


@dataclass(frozen=True)
class ValueKind:
    """A kind of metadata value a policy may require: its name and how it reads in messages."""

    name: str
    description: str
    accepts: Callable[[Any], bool] = field(compare=False, repr=False)


KINDS: dict[str, ValueKind] = {
    kind.name: kind
    for kind in (
        ValueKind("str", "text", _is_text),
        ValueKind(
            "str_or_list",
            "text or a list of texts",
            lambda v: _is_text(v) or (isinstance(v, list) and bool(v) and all(map(_is_text, v))),
        ),
        ValueKind(
            "metrics",
            "a mapping of metric names to numbers",
            lambda v: (
                isinstance(v, Mapping)
                and bool(v)
                and all(isinstance(k, str) and _is_number(n) for k, n in v.items())
            ),
        ),
        ValueKind("number", "a number", _is_number),
        ValueKind("bool", "true or false", lambda v: isinstance(v, bool)),
        ValueKind("list", "a list", lambda v: isinstance(v, list)),
        ValueKind("mapping", "a mapping", lambda v: isinstance(v, Mapping)),
        ValueKind("any", "any value", lambda v: v is not None),
    )
}

# The design note's "Metadata Standards": what each key holds, as an example for messages.
_HINTS = {
    "author": "who created or modified it, e.g. author: content-team",
    "purpose": "what the template does, e.g. purpose: Opening hook for entrepreneur posts",
    "tested_on": "the platforms it was tested on, e.g. tested_on: threads",
    "performance_metrics": "its expected metrics, e.g. performance_metrics: "
    "{engagement_rate: 0.06}",
}
DEFAULT_REQUIRED_METADATA = (
    ("author", "str"),
    ("purpose", "str"),
    ("tested_on", "str_or_list"),
    ("performance_metrics", "metrics"),
)
# The value of REGISTRY_UI_REQUIRED_METADATA that requires nothing (empty means the default).
NO_POLICY = "none"


@dataclass(frozen=True)
class MetadataProblem:
    """One way a version's metadata misses the policy; ``key`` is the key in question."""

    key: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class MetadataPolicy:
    """The metadata keys every new version must carry, each with the kind of its value."""

    required: tuple[tuple[str, str], ...] = DEFAULT_REQUIRED_METADATA

    def __post_init__(self) -> None:
        for key, kind in self.required:
            if not isinstance(key, str) or not key:
                raise ValueError(f"a required metadata key must be text, got {key!r}")
            if kind not in KINDS:
                raise ValueError(
                    f"metadata key {key!r}: unknown kind {kind!r}; the kinds are "
                    + ", ".join(KINDS)
                )

    @classmethod
    def none(cls) -> MetadataPolicy:
        return cls(())

    @classmethod
    def parse(cls, raw: str) -> MetadataPolicy:
        """Read a policy written as JSON ({"author": "str", ...}) or as "author:str,...".

        Empty text means the default policy; "none" means no key is required. A key given
        without a kind may hold any value. Raises ValueError saying what is wrong.
        """
        text = raw.strip()
        if not text:
            return cls()
        if text.lower() == NO_POLICY:
            return cls.none()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"not valid JSON: {error}") from None
            if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
                raise ValueError('write a JSON object of key to kind, e.g. {"author": "str"}')
            pairs = list(loaded.items())
        else:
            pairs = []
            for item in filter(None, (part.strip() for part in text.split(","))):
                key, _, kind = item.partition(":")
                pairs.append((key.strip(), kind.strip() or "any"))
        keys = [key for key, _ in pairs]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"key {twice[0]!r} is given twice")
        return cls(tuple(pairs))

    def __bool__(self) -> bool:
        return bool(self.required)

    def describe(self) -> str:
        if not self.required:
            return "no key is required"
        return ", ".join(f"{key} ({KINDS[kind].description})" for key, kind in self.required)

    def check(self, metadata: Mapping[str, Any] | None) -> list[MetadataProblem]:
        """Every problem with ``metadata``, in the policy's order (empty: it complies)."""
        metadata = metadata or {}
        problems = []
        for key, kind_name in self.required:
            kind = KINDS[kind_name]
            hint = f" ({_HINTS[key]})" if key in _HINTS else ""
            if key not in metadata or metadata[key] is None:
                message = (
                    f"metadata.{key} is missing: the metadata policy requires "
                    f"{kind.description} here{hint}"
                )
                problems.append(MetadataProblem(key, message))
            elif not kind.accepts(metadata[key]):
                found = describe_value(metadata[key])
                message = f"metadata.{key} must be {kind.description}{hint}; found {found}"
                problems.append(MetadataProblem(key, message))
        return problems

    def problems(self, metadata: Mapping[str, Any] | None) -> list[str]:
        return [problem.message for problem in self.check(metadata)]


# -- test cases -------------------------------------------------------------------------------

CASE_KEYS = (
    "name",
    "values",
    "max_length",
    "contains",
    "not_contains",
    "no_leftover_braces",
    "expected",
    "messages",
    "sample_output",
)
# The expectations a text check has: on the whole text, or on one message (MessageCheck).
TEXT_CHECK_KEYS = CASE_KEYS[2:7]
MESSAGE_CHECK_KEYS = ("message", "role", *TEXT_CHECK_KEYS)
RENDERS = "renders without error"
MATCHES_RESPONSE_FORMAT = "sample_output is JSON matching the response format"


@dataclass(frozen=True)
class Expectation:
    """One thing the rendered text must satisfy.

    ``kind`` is max_length (``value`` the limit), contains or not_contains (``value`` the
    text, or with ``regex`` the pattern), no_leftover_braces, or expected (``value`` the
    exact output).
    """

    kind: str
    value: Any = None
    regex: bool = False
    _compiled: Any = field(default=None, compare=False, repr=False)  # an RE2 pattern

    def describe(self) -> str:
        if self.kind == "max_length":
            return f"at most {self.value:,} characters"
        if self.kind in ("contains", "not_contains"):
            verb = {
                ("contains", False): "contains",
                ("contains", True): "matches",
                ("not_contains", False): "does not contain",
                ("not_contains", True): "does not match",
            }[(self.kind, self.regex)]
            if self.regex:
                return f"{verb} regular expression {_pattern(self.value)}"
            return f"{verb} {_quote(self.value)}"
        if self.kind == "no_leftover_braces":
            return "no '{' or '}' left over"
        return "equals the expected output"

    def failure(self, rendered: str, budget: CheckBudget | None = None) -> str | None:
        """Why ``rendered`` misses this expectation, or None when it meets it.

        With a ``budget``, the steps the check takes are spent from it first (BudgetSpent
        when they are more than it has left).
        """
        if budget is not None:
            budget.spend(self.steps(rendered))
        if self.kind == "max_length":
            if len(rendered) > self.value:
                return f"is {len(rendered):,} characters long, {len(rendered) - self.value:,} over"
            return None
        if self.kind in ("contains", "not_contains"):
            found = self._find(rendered)
            if self.kind == "contains":
                return None if found else "not found in the rendered text"
            if found is None:
                return None
            start, text = found
            if self.regex:
                return f"{_quote(text)} at character {start + 1} matches it"
            return f"found at character {start + 1}"
        if self.kind == "no_leftover_braces":
            match = re.search(r"[{}]", rendered)
            if match is None:
                return None
            where = match.start()
            return f"{match.group()!r} at character {where + 1}: {_around(rendered, where)}"
        if rendered == self.value:
            return None
        return _first_difference(self.value, rendered)

    def steps(self, rendered: str) -> int:
        """The most work checking ``rendered`` can take: RE2 looks at each character with
        at most every instruction of the pattern's program; a text search may compare the
        needle at each position."""
        if self.kind == "max_length":
            return 1
        if self.kind in ("contains", "not_contains"):
            if self.regex:
                return max(len(rendered), 1) * max(self.pattern.programsize, 1)
            return max(len(rendered), 1) * min(len(self.value), _FIND_WIDTH)
        return max(len(rendered), 1)

    def _find(self, rendered: str) -> tuple[int, str] | None:
        if self.regex:
            match = self.pattern.search(rendered)
            return (match.start(), match.group()) if match else None
        index = rendered.find(self.value)
        return (index, self.value) if index >= 0 else None

    @property
    def pattern(self) -> Any:
        if self._compiled is None:  # built by hand rather than parsed: compile now
            object.__setattr__(self, "_compiled", compile_pattern(self.value))
        return self._compiled

    def to_data(self) -> Any:
        """The value as written in a case (for contains/not_contains, one item)."""
        if self.kind in ("contains", "not_contains") and self.regex:
            return {"regex": self.value}
        return self.value


@dataclass(frozen=True)
class TestCase:
    """Named sample values and the expectations on the text they render."""

    __test__ = False  # not a pytest test class, whatever module imports it

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    expectations: tuple[Expectation, ...] = ()
    # Chat templates: expectations on single messages, and a model's answer to check
    # against the response format (None: the case has none).
    message_checks: tuple[MessageCheck, ...] = ()
    sample_output: str | None = None

    def to_data(self) -> dict[str, Any]:
        """The plain dict this case is stored as (parse_cases reads it back)."""
        data: dict[str, Any] = {"name": self.name}
        if self.values:
            data["values"] = self.values
        data.update(_expectations_data(self.expectations))
        if self.message_checks:
            data["messages"] = [check.to_data() for check in self.message_checks]
        if self.sample_output is not None:
            data["sample_output"] = self.sample_output
        return data


@dataclass(frozen=True)
class MessageCheck:
    """Expectations on the rendered content of one message of a chat template: message
    ``number`` (from 1), or with only ``role`` every message with that role; given both,
    the message must have that role (a reordering is caught rather than checked blindly)."""

    number: int | None
    role: str | None
    expectations: tuple[Expectation, ...] = ()

    def describe(self) -> str:
        if self.number is None:
            return f"every {self.role} message"
        return f"message {self.number}" + (f" ({self.role})" if self.role else "")

    def targets(self, messages: Sequence[Mapping[str, str]]) -> list[int] | str:
        """The indexes (from 0) of the messages this check is on, or why there is none."""
        if self.number is None:
            found = [i for i, m in enumerate(messages) if m["role"] == self.role]
            if found:
                return found
            return f"no message has the role {self.role!r}; " + _roles_of(messages)
        if self.number > len(messages):
            return (
                f"there is no message {self.number}: the template has {len(messages)} "
                f"message(s); number them from 1"
            )
        role = messages[self.number - 1]["role"]
        if self.role is not None and role != self.role:
            return f"message {self.number} is a {role} message, not {self.role}"
        return [self.number - 1]

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.number is not None:
            data["message"] = self.number
        if self.role is not None:
            data["role"] = self.role
        data.update(_expectations_data(self.expectations))
        return data


def _expectations_data(expectations: Iterable[Expectation]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for expectation in expectations:
        if expectation.kind in ("contains", "not_contains"):
            data.setdefault(expectation.kind, []).append(expectation.to_data())
        else:
            data[expectation.kind] = expectation.to_data()
    return data


def _roles_of(messages: Sequence[Mapping[str, str]]) -> str:
    roles = ", ".join(dict.fromkeys(m["role"] for m in messages))
    return f"its messages are {roles}"


@dataclass(frozen=True)
class CaseProblem:
    """A problem in a set of test cases.

    ``path`` locates it in the list as written: (case index, key, item index, ...), so a
    reader of a YAML file can point at the very value. ``regex_position`` is the position
    of a regular expression's error in the pattern (from 0), when that is the problem.
    """

    case: str
    path: tuple[Any, ...]
    message: str
    regex_position: int | None = None

    def __str__(self) -> str:
        return f"{self.case}: {self.message}"


class TestCaseError(ValueError):
    """Test cases that cannot be used as written; ``problems`` holds every CaseProblem."""

    __test__ = False

    def __init__(self, problems: Sequence[CaseProblem]):
        self.problems = list(problems)
        super().__init__(_listed("the test cases cannot be used", [str(p) for p in self.problems]))

    def __reduce__(self):
        return type(self), (self.problems,)


def parse_cases(data: Any, extra: Mapping[str, Any] | None = None) -> list[TestCase]:
    """Test cases from plain data (a list of dicts), every problem found before raising.

    Regular expressions are compiled here, so a bad one is refused when the cases are saved,
    with the pattern, the position of its error and the case's name. Given the version's
    ``extra`` (core/messages.normalize_extra: {} for a text template), what the cases point
    at is checked too: each message they name exists, and a sample_output has a response
    format to be checked against.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        found = describe_value(data)
        raise TestCaseError([CaseProblem("test cases", (), f"must be a list; found {found}")])
    problems: list[CaseProblem] = []
    cases: list[TestCase] = []
    names: dict[str, int] = {}
    for index, item in enumerate(data):
        case = _CaseReader(index, item, problems).read()
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in names:
            problems.append(
                CaseProblem(
                    _case_label(index, name),
                    (index, "name"),
                    f"the name is used by test case {names[name] + 1} too: give each case "
                    "its own name",
                )
            )
            continue
        if isinstance(name, str):
            names[name] = index
        if case is not None:
            if extra is not None:
                problems += _target_problems(index, case, extra)
            cases.append(case)
    if problems:
        raise TestCaseError(problems)
    return cases


def cases_in(
    metadata: Mapping[str, Any] | None, extra: Mapping[str, Any] | None = None
) -> list[TestCase]:
    """The test cases a version's metadata holds (TestCaseError if they cannot be used)."""
    return parse_cases((metadata or {}).get(TEST_CASES_KEY), extra)


def _target_problems(index: int, case: TestCase, extra: Mapping[str, Any]) -> list[CaseProblem]:
    """Where a case points at what the version does not have: a message, a response format."""
    label = _case_label(index, case.name)
    messages = extra.get("messages")
    problems = []
    if case.message_checks and not messages:
        problems.append(
            CaseProblem(
                label,
                (index, "messages"),
                "messages: checks on single messages need a chat template, and this one is "
                "a text: check the text with contains, max_length... at the case's top level",
            )
        )
    for position, check in enumerate(case.message_checks if messages else ()):
        found = check.targets(messages)
        if isinstance(found, str):
            problems.append(
                CaseProblem(label, (index, "messages", position), f"messages[{position}]: {found}")
            )
    if case.sample_output is not None and extra.get("response_format") is None:
        problems.append(
            CaseProblem(
                label,
                (index, "sample_output"),
                "sample_output is checked against the template's response_format, and this "
                "version has none: add a response_format (a JSON schema), or remove "
                "sample_output",
            )
        )
    return problems


class _CaseReader:
    def __init__(self, index: int, item: Any, problems: list[CaseProblem]):
        self.index = index
        self.item = item
        self.problems = problems
        self.label = _case_label(index, None)
        self.failed = False

    def read(self) -> TestCase | None:
        item = self.item
        if not isinstance(item, Mapping):
            self._problem((), f"must be a mapping with a name; found {describe_value(item)}")
            return None
        name = item.get("name")
        if _is_text(name) and len(name) <= MAX_CASE_NAME_LENGTH:
            self.label = _case_label(self.index, name)
        elif "name" not in item:
            self._problem((), "has no name: give it one, e.g. name: fits a Threads post")
        else:
            self._problem(
                ("name",),
                f"name must be text of 1 to {MAX_CASE_NAME_LENGTH} characters; found "
                f"{describe_value(name)}",
            )
        for key in item:
            if key not in CASE_KEYS:
                self._problem((key,), _unknown_case_key(key))
        values = item.get("values", {})
        if values is None:
            values = {}
        if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
            self._problem(
                ("values",),
                "values must be a mapping of variable names to sample values, e.g. values: "
                f"{{hook_text: Hello}}; found {describe_value(values)}",
            )
            values = {}
        expectations = self._expectations(item)
        message_checks = self._message_checks()
        sample_output = self._sample_output()
        if self.failed:
            return None
        return TestCase(name, dict(values), expectations, message_checks, sample_output)

    def _expectations(self, item: Mapping, at: tuple = ()) -> tuple[Expectation, ...]:
        """The text expectations in ``item``: a case, or one of its ``messages`` at ``at``."""
        return (
            *self._max_length(item, at),
            *self._texts("contains", item, at),
            *self._texts("not_contains", item, at),
            *self._no_leftover_braces(item, at),
            *self._expected(item, at),
        )

    def _message_checks(self) -> tuple[MessageCheck, ...]:
        if "messages" not in self.item:
            return ()
        given = self.item["messages"]
        if not isinstance(given, list) or not given:
            self._problem(
                ("messages",),
                "messages must be a list of checks on single messages, e.g. "
                f"[{{role: system, contains: 'You are'}}]; found {describe_value(given)}",
            )
            return ()
        checks = []
        for position, entry in enumerate(given):
            at = ("messages", position)
            shown = f"messages[{position}]"
            if not isinstance(entry, Mapping):
                self._problem(
                    at,
                    f"{shown} must be a mapping with message: or role: and what to check; "
                    f"found {describe_value(entry)}",
                )
                continue
            for key in entry:
                if key not in MESSAGE_CHECK_KEYS:
                    self._problem((*at, key), _unknown_key(key, MESSAGE_CHECK_KEYS, shown))
            number, role = entry.get("message"), entry.get("role")
            if number is None and role is None:
                self._problem(
                    at,
                    f"{shown} names no message: give message: N (numbered from 1) and/or "
                    "role: system, user...",
                )
            if number is not None and (
                isinstance(number, bool) or not isinstance(number, int) or number < 1
            ):
                self._problem(
                    (*at, "message"),
                    f"{shown}.message must be a message's number, from 1; found "
                    f"{describe_value(number)}",
                )
            if role is not None and role not in ROLES:
                self._problem(
                    (*at, "role"),
                    f"{shown}.role must be one of {', '.join(ROLES)}; found {describe_value(role)}",
                )
            expectations = self._expectations(entry, at)
            if not any(key in entry for key in TEXT_CHECK_KEYS):
                self._problem(
                    at,
                    f"{shown} checks nothing: give it one of {', '.join(TEXT_CHECK_KEYS)}",
                )
            checks.append(MessageCheck(number, role, expectations))
        return tuple(checks)

    def _sample_output(self) -> str | None:
        if "sample_output" not in self.item:
            return None
        text = self.item["sample_output"]
        if not isinstance(text, str) or not text.strip():
            self._problem(
                ("sample_output",),
                "sample_output must be an answer as a model returns it: JSON written as "
                'text, e.g. sample_output: \'{"hook": "Hi"}\'; found '
                f"{describe_value(text)}",
            )
            return None
        return text

    def _max_length(self, item: Mapping, at: tuple) -> list[Expectation]:
        if "max_length" not in item:
            return []
        limit = item["max_length"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            self._problem(
                (*at, "max_length"),
                f"{_shown(at, 'max_length')} must be a whole number of characters, at least "
                f"1, e.g. max_length: 500; found {describe_value(limit)}",
            )
            return []
        return [Expectation("max_length", limit)]

    def _texts(self, key: str, item: Mapping, at: tuple) -> list[Expectation]:
        if key not in item:
            return []
        given = item[key]
        items = given if isinstance(given, list) else [given]
        if not items:
            self._problem((*at, key), f"{_shown(at, key)} is an empty list: list at least one text")
        expectations = []
        for position, entry in enumerate(items):
            where = (*at, key, position) if isinstance(given, list) else (*at, key)
            shown = f"{_shown(at, key)}[{position}]" if isinstance(given, list) else _shown(at, key)
            if isinstance(entry, str) and entry:
                expectations.append(Expectation(key, entry))
            elif isinstance(entry, Mapping) and set(entry) == {"regex"}:
                expectation = self._regex(key, entry["regex"], (*where, "regex"), shown)
                if expectation is not None:
                    expectations.append(expectation)
            else:
                self._problem(
                    where,
                    f"{shown} must be a text, or {{regex: PATTERN}} for a regular expression; "
                    f"found {describe_value(entry)}",
                )
        return expectations

    def _regex(self, key: str, pattern: Any, where: tuple, shown: str) -> Expectation | None:
        if not isinstance(pattern, str) or not pattern:
            self._problem(
                where, f"{shown}.regex must be a regular expression as text; found "
                f"{describe_value(pattern)}"
            )  # fmt: skip
            return None
        try:
            compiled = compile_pattern(pattern)
        except PatternError as error:
            self._problem(
                where,
                f"{shown}: regular expression {_pattern(pattern)} cannot be used, at position "
                f"{error.position}: {error.problem}",
                regex_position=error.position,
            )
            return None
        return Expectation(key, pattern, regex=True, _compiled=compiled)

    def _no_leftover_braces(self, item: Mapping, at: tuple) -> list[Expectation]:
        if "no_leftover_braces" not in item:
            return []
        flag = item["no_leftover_braces"]
        if not isinstance(flag, bool):
            self._problem(
                (*at, "no_leftover_braces"),
                f"{_shown(at, 'no_leftover_braces')} must be true or false; found "
                f"{describe_value(flag)}",
            )
            return []
        return [Expectation("no_leftover_braces", True)] if flag else []

    def _expected(self, item: Mapping, at: tuple) -> list[Expectation]:
        if "expected" not in item:
            return []
        text = item["expected"]
        if not isinstance(text, str):
            self._problem(
                (*at, "expected"),
                f"{_shown(at, 'expected')} must be the exact rendered text; found "
                f"{describe_value(text)}",
            )
            return []
        return [Expectation("expected", text)]

    def _problem(self, where: tuple, message: str, *, regex_position: int | None = None):
        self.failed = True
        self.problems.append(CaseProblem(self.label, (self.index, *where), message, regex_position))


def _case_label(index: int, name: str | None) -> str:
    return f"test case {name!r}" if name else f"test case {index + 1}"


def _unknown_case_key(key: Any) -> str:
    return _unknown_key(key, CASE_KEYS, "a test case")


def _unknown_key(key: Any, accepted: Sequence[str], what: str) -> str:
    guess = difflib.get_close_matches(str(key), accepted, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"unknown key {key!r}{hint}: {what} has the keys {', '.join(accepted)}"


def _shown(at: tuple, key: str) -> str:
    """How a key reads in a message: max_length, or messages[1].max_length in a message check."""
    return f"{at[0]}[{at[1]}].{key}" if at else key


# -- regular expressions ----------------------------------------------------------------------


class PatternError(ValueError):
    """A regular expression RE2 cannot run: ``problem`` in plain words, ``position`` from 0."""

    def __init__(self, pattern: str, position: int, problem: str):
        self.pattern = pattern
        self.position = position
        self.problem = problem
        super().__init__(f"position {position}: {problem}")

    def __reduce__(self):
        return type(self), (self.pattern, self.position, self.problem)


# RE2's error texts ("missing ]: [abc"), in plain words; what RE2 does not offer at all says so.
_RE2_PROBLEMS = {
    "invalid escape sequence": "this escape is not supported",
    "invalid character class": "this character class is not supported",
    "invalid character class range": "this range is backwards or not supported",
    "missing ]": "a '[' is never closed",
    "missing )": "a '(' is never closed",
    "unexpected )": "a ')' has no matching '('",
    "trailing \\": "the pattern ends with a lone backslash",
    "no argument for repetition operator": "a repetition has nothing before it to repeat",
    "invalid repetition size": "a repetition counts past 1,000, the most RE2 accepts in all",
    "bad repetition operator": "a repetition follows a repetition, such as '**' or '*+'",
    "invalid perl operator": "this '(?' group is not supported",
    "invalid named capture group": "a named group must be written (?P<name>...)",
    "pattern too large - compile failed": "the pattern is too large to run",
}
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_LINEAR = "patterns run on RE2, in time proportional to the text, without backtracking"


def compile_pattern(pattern: str) -> Any:
    """The pattern compiled by RE2, or PatternError saying why it cannot run and where."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        raise _pattern_error(pattern, error) from None


def _pattern_error(pattern: str, error: Exception) -> PatternError:
    raw = error.args[0] if error.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    code, _, fragment = text.partition(": ")
    if code == "missing )":  # RE2 quotes the whole pattern: point at the '(' left open
        position = _unclosed_group(pattern)
    else:
        position = max(pattern.find(fragment), 0) if fragment else 0
    problem = _RE2_PROBLEMS.get(code, code or "RE2 cannot run it")
    if _BACKREFERENCE.search(pattern):
        problem += f"; backreferences such as \\1 are not offered: {_LINEAR}"
    elif _LOOKAROUND.search(pattern):
        problem += f"; lookahead and lookbehind such as (?=...) are not offered: {_LINEAR}"
    elif code == "invalid perl operator":
        problem += f" (atomic groups, comments and (?x) are not offered: {_LINEAR})"
    elif "\\Z" in pattern:
        problem += "; write \\z for the end of the text"
    return PatternError(pattern, position, problem)


def _unclosed_group(pattern: str) -> int:
    """Where the innermost '(' that is never closed opens (0 if none is found)."""
    opened: list[int] = []
    position, in_class = 0, False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            position += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A ']' first in a class ('[]a]', '[^]a]') is one of its characters.
            for opening in ("^]", "]"):
                if pattern.startswith(opening, position + 1):
                    position += len(opening)
                    break
        elif char == "(":
            opened.append(position)
        elif char == ")" and opened:
            opened.pop()
        position += 1
    return opened[-1] if opened else 0


def case_set_size_problem(metadata: Mapping[str, Any]) -> str | None:
    """Why the metadata, test cases included, is too large for MLflow, or None."""
    encoded = json.dumps(metadata, sort_keys=True, ensure_ascii=False)
    if len(encoded) <= MAX_METADATA_JSON_LENGTH:
        return None
    message = (
        f"metadata is {len(encoded):,} characters as JSON: MLflow keeps at most "
        f"{MAX_METADATA_JSON_LENGTH:,} in the tag that stores it"
    )
    cases = metadata.get(TEST_CASES_KEY)
    if cases:
        size = len(json.dumps(cases, sort_keys=True, ensure_ascii=False))
        message += (
            f"; its {len(cases)} test case(s) take {size:,} of them: shorten their values "
            "and expected outputs, or keep fewer cases"
        )
    return message


def registration_problems(
    metadata: Mapping[str, Any] | None,
    policy: MetadataPolicy | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every reason to refuse registering a version with this metadata (empty: none).

    The policy's problems, then the test cases' (each with its case; with the version's
    ``extra``, what they point at too), then the size.
    """
    metadata = metadata or {}
    problems = policy.problems(metadata) if policy else []
    try:
        cases_in(metadata, extra)
    except TestCaseError as error:
        problems.extend(f"{TEST_CASES_KEY}: {problem}" for problem in error.problems)
    too_large = case_set_size_problem(metadata)
    if too_large:
        problems.append(too_large)
    return problems


# -- running them -----------------------------------------------------------------------------

RUNS_IN_BUDGET = "runs within the check budget"

# How a case's values are put into a text: (text, values, limits) -> the rendered text.
Render = Callable[[str, Mapping[str, Any], InputLimits], str]


def format_bounded(text: str, values: Mapping[str, Any], limits: InputLimits) -> str:
    """registry_ui's own templates: str.format, refused past the limits (render_bounded)."""
    return parse_template(text).render_bounded(values, limits)


class BudgetSpent(Exception):
    """A check would take more steps than its run has left."""


class CheckBudget:
    """The steps one run of test cases may take (InputLimits.check_steps), spent as it goes.

    Each render and each check spends what it costs before it runs (a render, what it
    rendered, its own length being bounded), so a run ends by itself once its budget is
    spent, in any thread, with no signal or timer.
    """

    def __init__(self, steps: int):
        self.steps = steps
        self.left = steps

    def spend(self, steps: int) -> None:
        if steps > self.left:
            left = f"{self.left:,}" if self.left else "none"
            self.left = 0  # what comes after it is not run either: the run stops here
            raise BudgetSpent(
                f"not run: it needs up to {steps:,} steps of work and this run has {left} "
                f"left of its budget of {self.steps:,}: shorten the text it checks or the "
                "regular expression, or keep fewer test cases"
            )
        self.left -= steps

    @property
    def spent(self) -> bool:
        return self.left == 0


@dataclass(frozen=True)
class Failure:
    """An expectation a case missed: what was expected, and what was wrong."""

    expectation: str
    message: str

    def __str__(self) -> str:
        return f"{self.expectation}: {self.message}"


@dataclass(frozen=True)
class CaseResult:
    """One case run against one template text; ``rendered`` is None when it did not render."""

    name: str
    passed: bool
    rendered: str | None
    failures: tuple[Failure, ...] = ()
    # Set when ``rendered`` keeps only the start of the text: its whole length.
    rendered_length: int | None = None

    @property
    def cut(self) -> bool:
        return self.rendered_length is not None

    @property
    def error(self) -> str | None:
        """The render error, when the text did not render."""
        if self.rendered is None and self.failures:
            return self.failures[0].message
        return None

    def to_data(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "passed": self.passed,
            "rendered": self.rendered,
            "failures": [
                {"expectation": f.expectation, "message": f.message} for f in self.failures
            ],
        }
        if self.rendered_length is not None:
            data["rendered_length"] = self.rendered_length
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CaseResult:
        return cls(
            name=data["name"],
            passed=bool(data["passed"]),
            rendered=data.get("rendered"),
            failures=tuple(
                Failure(f["expectation"], f["message"]) for f in data.get("failures", ())
            ),
            rendered_length=data.get("rendered_length"),
        )


def run_case(
    template_text: str,
    case: TestCase,
    limits: InputLimits = DEFAULT_LIMITS,
    budget: CheckBudget | None = None,
    extra: Mapping[str, Any] | None = None,
    render: Render | None = None,
) -> CaseResult:
    """Render the case's values (bounded by ``limits``) and check each expectation; with a
    ``budget``, a case it cannot pay for fails as not run. ``extra`` is the version's
    messages and response format (core/messages.normalize_extra), for the checks on them.
    ``render(text, values, limits)`` renders the text and each message (default: str.format,
    ``format_bounded``; a native prompt's: MLflow's own formatting).
    """
    budget = budget if budget is not None else CheckBudget(limits.check_steps)
    render = render or format_bounded
    try:
        budget.spend(max(len(template_text), 1))
        rendered = render(template_text, case.values, limits)
        budget.spend(len(rendered))
    except BudgetSpent as spent:
        return CaseResult(case.name, False, None, (Failure(RUNS_IN_BUDGET, str(spent)),))
    except TemplateValidationError as error:
        return CaseResult(case.name, False, None, (Failure(RENDERS, str(error)),))
    except Exception as error:  # the case's values broke the render: that case fails
        return CaseResult(case.name, False, None, (Failure(RENDERS, str(error)),))
    failures = _check_text(rendered, case.expectations, budget)
    if case.message_checks and not budget.spent:
        failures += _check_messages(case, extra or {}, limits, budget, render)
    if case.sample_output is not None and not budget.spent:
        failures += _check_sample_output(
            case.sample_output, (extra or {}).get("response_format"), budget
        )
    return CaseResult(case.name, not failures, rendered, tuple(failures))


def _check_text(
    rendered: str, expectations: Iterable[Expectation], budget: CheckBudget, label: str = ""
) -> list[Failure]:
    failures = []
    for expectation in expectations:
        described = f"{label}{expectation.describe()}"
        try:
            message = expectation.failure(rendered, budget)
        except BudgetSpent as spent:
            failures.append(Failure(described, str(spent)))
            break
        if message is not None:
            failures.append(Failure(described, message))
    return failures


def _check_messages(
    case: TestCase,
    extra: Mapping[str, Any],
    limits: InputLimits,
    budget: CheckBudget,
    render: Render,
) -> list[Failure]:
    """Each message check on the rendered content of the message(s) it names; a message is
    rendered once, when a check first needs it."""
    messages = extra.get("messages")
    if not messages:
        return [
            Failure(
                f"{check.describe()} can be checked",
                "the template is a text, not chat messages",
            )
            for check in case.message_checks
        ]
    rendered: dict[int, str] = {}
    failures: list[Failure] = []
    for check in case.message_checks:
        targets = check.targets(messages)
        if isinstance(targets, str):
            failures.append(Failure(f"{check.describe()} can be checked", targets))
            continue
        for index in targets:
            label = f"message {index + 1} ({messages[index]['role']}) "
            if index not in rendered:
                content = messages[index]["content"]
                try:
                    budget.spend(max(len(content), 1))
                    text = render(content, case.values, limits)
                    budget.spend(len(text))
                except BudgetSpent as spent:
                    return [*failures, Failure(f"{label}{RUNS_IN_BUDGET}", str(spent))]
                except Exception as error:  # the whole text rendered, so this is rare
                    failures.append(Failure(f"{label}{RENDERS}", str(error)))
                    continue
                rendered[index] = text
            failures += _check_text(rendered[index], check.expectations, budget, label)
            if budget.spent:
                return failures
    return failures


def _check_sample_output(
    text: str, schema: Mapping[str, Any] | None, budget: CheckBudget
) -> list[Failure]:
    """The sample answer parses as JSON (where not, line and column in it) and matches the
    response format (where not, the JSON path of each mismatch)."""
    if schema is None:
        return [Failure(MATCHES_RESPONSE_FORMAT, "the version has no response format")]
    try:
        budget.spend(max(len(text), 1) * 2)  # parsed once, walked once
    except BudgetSpent as spent:
        return [Failure(MATCHES_RESPONSE_FORMAT, str(spent))]
    try:
        value = loads_json(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        return [Failure(MATCHES_RESPONSE_FORMAT, f"not JSON, at {where}: {error.msg}")]
    errors = schema_errors(value, schema)
    if not errors:
        return []
    return [Failure(MATCHES_RESPONSE_FORMAT, "; ".join(errors))]


def run_cases(
    template_text: str,
    cases: Iterable[TestCase],
    limits: InputLimits = DEFAULT_LIMITS,
    extra: Mapping[str, Any] | None = None,
    render: Render | None = None,
) -> list[CaseResult]:
    """Render each case's values with the template and check each of its expectations.

    One budget of ``limits.check_steps`` for them all; the rendered texts kept in the
    results add up to ``limits.rendered_length`` characters at most (later ones are cut),
    since results are stored and shown.
    """
    budget = CheckBudget(limits.check_steps)
    kept = limits.rendered_length
    results = []
    for case in cases:
        result = run_case(template_text, case, limits, budget, extra, render)
        if result.rendered is not None:
            result = _cut_rendered(result, kept)
            kept -= len(result.rendered)
        results.append(result)
    return results


def _cut_rendered(result: CaseResult, room: int) -> CaseResult:
    if len(result.rendered) <= room:
        return result
    return replace(
        result, rendered=result.rendered[: max(room, 0)], rendered_length=len(result.rendered)
    )


def run_version_cases(
    template_text: str,
    metadata: Mapping[str, Any] | None,
    limits: InputLimits = DEFAULT_LIMITS,
    extra: Mapping[str, Any] | None = None,
    render: Render | None = None,
) -> list[CaseResult]:
    """Run the cases a version's metadata holds; cases that cannot be read are one failure.

    Registration refuses such cases, so only a version written to MLflow by other means
    gets here with them: it is flagged as failing rather than breaking the caller.
    """
    try:
        cases = cases_in(metadata)
    except TestCaseError as error:
        return [
            CaseResult(
                "(test cases)",
                False,
                None,
                tuple(Failure("the test cases can be read", str(p)) for p in error.problems),
            )
        ]
    return run_cases(template_text, cases, limits, extra, render)


def failing(results: Iterable[CaseResult]) -> list[CaseResult]:
    return [result for result in results if not result.passed]


def regressions(
    old_results: Iterable[CaseResult], new_results: Iterable[CaseResult]
) -> list[CaseResult]:
    """The cases the new version fails that the old one passed (matched by name)."""
    passed_before = {result.name for result in old_results if result.passed}
    return [r for r in new_results if not r.passed and r.name in passed_before]


def cases_for_comparison(old: Sequence[TestCase], new: Sequence[TestCase]) -> list[TestCase]:
    """The cases to run on both texts of a diff: the new version's, then the old one's that
    the new version dropped (a dropped case the new text fails is still worth seeing)."""
    names = {case.name for case in new}
    return [*new, *(case for case in old if case.name not in names)]


def summarize(results: Sequence[CaseResult]) -> str:
    if not results:
        return "no test cases"
    bad = failing(results)
    if not bad:
        return f"all {len(results)} test case(s) pass"
    return f"{len(bad)} of {len(results)} test case(s) fail: " + ", ".join(r.name for r in bad)


# -- messages ---------------------------------------------------------------------------------


def describe_value(value: Any) -> str:
    """How a value reads in a message: "the number 3", "a list", "empty text"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {_quote(value)}" if value.strip() else "empty text"
    if isinstance(value, Mapping):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return f"a {type(value).__name__}"


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _pattern(pattern: str, limit: int = 60) -> str:
    """A regular expression as written: backslashes are not doubled as repr() would."""
    if not pattern.isprintable() or "'" in pattern:
        return _quote(pattern, limit)
    return f"'{pattern}'" if len(pattern) <= limit else f"'{pattern[: limit - 3]}...'"


def _around(text: str, index: int, width: int = 20) -> str:
    start = max(0, index - width)
    end = min(len(text), index + width + 1)
    return ("..." if start else "") + repr(text[start:end]) + ("..." if end < len(text) else "")


def _first_difference(expected: str, rendered: str) -> str:
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, rendered, strict=False)) if a != b),
        min(len(expected), len(rendered)),
    )
    if index == len(expected):
        return (
            f"goes on after the expected end, at character {index + 1}: {_around(rendered, index)}"
        )
    if index == len(rendered):
        return f"stops at character {index + 1}, before the expected {_around(expected, index)}"
    return (
        f"differs at character {index + 1}: expected {_around(expected, index)}, "
        f"got {_around(rendered, index)}"
    )


def _listed(heading: str, problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return f"{heading}: {problems[0]}"
    listed = "\n".join(f"- {problem}" for problem in problems)
    return f"{heading}, {len(problems)} problems:\n{listed}"
