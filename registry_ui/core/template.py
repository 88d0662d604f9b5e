"""Prompt templates: Python ``str.format`` text whose fields are all named variables.

Validation follows CPython's own scanner (Objects/stringlib/unicode_format.h: MarkupIterator_next,
parse_field and field_name_split) step by step, so every text it accepts is also accepted by
``str.format``. Unlike ``str.format`` it reports every error, each with its line and column, and
it is stricter: fields must be named, attributes must be identifiers, and names starting with '_'
cannot be reached through '.' or '[]'.

Rendering is ``str.format`` itself; the work of explaining a failure is done only on failure.
A server renders with ``render_bounded`` instead: the same text, built field by field, refused
before a width, a precision or the whole text goes past the limits, whatever the template's
specs are: ``{x}`` a thousand times over a long value is as large as ``{x:>999999999}``.

Error codes (``TemplateError.code``):

- ``unclosed-brace``: a '{' whose field never ends with '}'
- ``stray-close-brace``: a single '}' outside a field
- ``empty-field``: ``{}`` or ``{:>10}``, a field without a name
- ``positional-field``: ``{0}``, fields are named variables only
- ``invalid-name``: a variable name that is not a Python identifier
- ``bad-conversion``: anything but ``!r``, ``!s`` or ``!a``
- ``bad-index``: ``{a[}``, ``{a[]}``, ``{a]}``, an index number too large
- ``unexpected-after-field``: text after ']' that is neither '.' nor '['
- ``bad-attribute``: ``{a.}``, ``{a..b}``, an attribute that is not an identifier
- ``private-access``: ``{obj._x}``, ``{obj.__class__}``, ``{d[_k]}``
- ``spec-too-deep``: ``{a:{b:{c}}}``, fields in a spec cannot have fields in their own spec
- ``nul-character``: a NUL character (U+0000), which PostgreSQL cannot store
- ``lone-surrogate``: half of a UTF-16 surrogate pair (U+D800 to U+DFFF), which is not a
  character and cannot be written as UTF-8 (MLflow and every database refuse it)

A field may not span lines (str.format would allow it; here a line break inside a field is
reported as a '{' never closed, the likely mistake). Lines are separated by '\\n'; lines and
columns count from 1, columns in characters.
"""

from __future__ import annotations

import _string
import bisect
import datetime
import functools
import itertools
import re
import reprlib
import string as _stdlib_string
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry_ui.core.limits import (
    DEFAULT_LIMITS,
    MAX_FORMAT_PRECISION,
    MAX_FORMAT_WIDTH,
    MAX_RENDERED_LENGTH,
    InputLimits,
)

# str.format's recursion budget: the text itself, then one level of fields inside format specs.
_TOP_LEVEL_DEPTH = 2
_CONVERSIONS = ("r", "s", "a")

_BRACE = re.compile(r"[{}]")
# A field never spans lines: str.format would allow it, but a line break inside a field is
# almost always a missing '}', and saying so helps more than a strange name or spec would.
_FIELD_NAME_STOP = re.compile(r"[{}\[:!\n]")
_CONVERSION_STOP = re.compile(r"[{}:\n]")
_ACCESSOR = re.compile(r"[.\[]")

# NUL and lone surrogates: str.format keeps them, but PostgreSQL refuses NUL in text and a
# lone surrogate cannot be encoded as UTF-8, so neither can be stored in MLflow or the mirror.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MAX_UNSTORABLE_REPORTS = 20

_short_repr = reprlib.Repr()
_short_repr.maxstring = 60
_short_repr.maxother = 60


# -- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateError:
    """One problem in a template text, where it is and what would be accepted instead."""

    code: str
    message: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


class TemplateValidationError(ValueError):
    """A template text that ``str.format`` would refuse or that reaches where it may not."""

    def __init__(self, errors: list[TemplateError]):
        self.errors = list(errors)
        super().__init__(_describe_errors(self.errors))

    def __reduce__(self):
        return type(self), (self.errors,)


class TemplateRenderError(ValueError):
    """A valid template that cannot be rendered with the values given."""


class MissingVariablesError(TemplateRenderError):
    """Values are missing for some variables; lists all of them at once."""

    def __init__(self, missing: list[str]):
        self.missing = list(missing)
        listed = ", ".join(repr(name) for name in self.missing)
        if len(self.missing) == 1:
            message = f"missing a value for variable {listed}"
        else:
            message = f"missing values for {len(self.missing)} variables: {listed}"
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.missing,)


class FieldLookupError(TemplateRenderError):
    """A field's attribute or index does not exist in the value given."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.field, str(self))


class RenderLimitError(TemplateRenderError):
    """A render refused before it was built: it would pass a limit (core/limits.py)."""


class FieldFormatError(TemplateRenderError):
    """A value cannot be formatted with its field's conversion or format spec."""

    def __init__(self, field: str, format_spec: str, message: str):
        self.field = field
        self.format_spec = format_spec
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.field, self.format_spec, str(self))


def _describe_errors(errors: list[TemplateError]) -> str:
    if len(errors) == 1:
        return f"invalid template: {errors[0]}"
    listed = "\n".join(f"- {error}" for error in errors)
    return f"invalid template, {len(errors)} errors:\n{listed}"


# -- parsed form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One replacement field, as written in the template."""

    path: str
    root: str
    format_spec: str
    conversion: str | None
    line: int
    column: int
    offset: int
    nested: bool


@dataclass(frozen=True)
class ParsedTemplate:
    """A validated template: its fields, the variables it needs, and a fast render."""

    text: str
    fields: tuple[Field, ...]
    variables: tuple[str, ...]
    # Roots written with '.' somewhere: only their JSON-like values need a view (see render).
    _attribute_roots: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # A field whose spec has digits or a nested field: rendered by _BoundedFormatter.
    _sized: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_attribute_roots", _roots_with_attribute_access(self.fields))
        sized = any(_SIZED_SPEC.search(each.format_spec) for each in self.fields)
        object.__setattr__(self, "_sized", sized)

    def render(self, values: Mapping[str, Any]) -> str:
        """Exactly ``text.format(**values)``, but ``{obj.key}`` also reads keys of dict values.

        Failures raise a TemplateRenderError saying which field failed and why.
        """
        if self._attribute_roots or type(values) is not dict:
            values = self._prepared(values)
        if self._sized:  # a width or precision, or a nested spec: checked before formatting
            return _BoundedFormatter(self).render(values)
        try:
            return self.text.format_map(values)
        except Exception as error:
            raise _explain_failure(self, values, error) from error

    def render_kwargs(self, **values: Any) -> str:
        return self.render(values)

    def render_bounded(
        self, values: Mapping[str, Any], limits: InputLimits = DEFAULT_LIMITS
    ) -> str:
        """What ``render`` gives, for a server rendering what people typed: refused with a
        RenderLimitError before any field's width or precision, or the whole text, passes
        the limits. Other failures raise the TemplateRenderError that render would.
        """
        if self._attribute_roots or type(values) is not dict:
            values = self._prepared(values)
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise MissingVariablesError(missing)
        return _BoundedRender(self, values, limits).text()

    @property
    def is_plain_format(self) -> bool:
        """True when ``text.format_map`` of a plain dict already renders it exactly (and no
        spec can ask for more text than the limits allow)."""
        return not self._attribute_roots and not self._sized

    def _prepared(self, values: Mapping[str, Any]) -> dict[str, Any]:
        # A copy, so the caller's mapping is never changed and format_map sees a plain dict.
        prepared = dict(values)
        for root in self._attribute_roots:
            value = prepared.get(root)
            if isinstance(value, _JSON_CONTAINERS):
                prepared[root] = _JsonView(value, root)
        return prepared


# A spec that can size its output: a digit (width, precision) or a nested field.
_SIZED_SPEC = re.compile(r"[0-9{]")
# The standard format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_STANDARD_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d*))?[a-zA-Z%]?",
    re.DOTALL,
)


def spec_size_problem(spec: str) -> str | None:
    """Why a (substituted) format spec asks for too much text, or None.

    Width and precision are read as str.format reads them; a spec that is not a standard
    one (a date's "%Y-%m-%d") sizes its output by its own length, which the template's
    length bounds.
    """
    if "{" in spec:
        return None  # nested: checked at render time, once the caller's values are in
    match = _STANDARD_SPEC.fullmatch(spec)
    if match is None:
        return None
    width, precision = match.group("width"), match.group("precision")
    if (width and len(width) > 9) or (width and int(width) > MAX_FORMAT_WIDTH):
        return (
            f"format width {width[:12]} is too large: at most {MAX_FORMAT_WIDTH} characters "
            "are accepted"
        )
    if precision and (len(precision) > 9 or int(precision) > MAX_FORMAT_PRECISION):
        return (
            f"format precision {precision[:12]} is too large: at most {MAX_FORMAT_PRECISION} "
            "digits are accepted"
        )
    return None


class _BoundedFormatter(_stdlib_string.Formatter):
    """str.format's own parsing and field lookup, with every field's final spec checked
    before it is formatted, and the whole output cut off at MAX_RENDERED_LENGTH."""

    def __init__(self, parsed: ParsedTemplate):
        self.parsed = parsed
        self.produced = 0

    def render(self, values: Mapping[str, Any]) -> str:
        try:
            out = self.vformat(self.parsed.text, (), values)
        except TemplateRenderError:
            raise
        except Exception as error:
            raise _explain_failure(self.parsed, values, error) from error
        return out

    def format_field(self, value: Any, format_spec: str) -> str:
        problem = spec_size_problem(format_spec)
        if problem:
            raise TemplateRenderError(f"not rendered: {problem}")
        text = format(value, format_spec)
        self.produced += len(text)
        if self.produced > MAX_RENDERED_LENGTH:
            raise TemplateRenderError(
                f"not rendered: the output would pass {MAX_RENDERED_LENGTH:,} characters, the "
                "most a render may produce"
            )
        return text


def _roots_with_attribute_access(fields: tuple[Field, ...]) -> tuple[str, ...]:
    roots: dict[str, None] = {}
    for each in fields:
        try:
            _, accessors = _string.formatter_field_name_split(each.path)
            if any(is_attribute for is_attribute, _ in accessors):
                roots[each.root] = None
        except ValueError:
            continue  # not a valid field name: only hand-built ParsedTemplates have those
    return tuple(roots)


# -- public functions -------------------------------------------------------------------------


def validate_template(text: str) -> list[TemplateError]:
    """Every error in ``text`` (empty when it is a valid template). Never raises for a str."""
    return _scan(text).errors


@functools.lru_cache(maxsize=4096)
def parse_template(text: str) -> ParsedTemplate:
    """The parsed template, computed once per text; raises TemplateValidationError."""
    scanner = _scan(text)
    if scanner.errors:
        raise TemplateValidationError(scanner.errors)
    fields = tuple(scanner.fields)
    variables = tuple(dict.fromkeys(each.root for each in fields))
    return ParsedTemplate(text, fields, variables)


def unstorable_problem(text: str) -> str | None:
    """Why ``text`` (metadata, a test case) cannot be stored, or None: NUL, lone surrogates."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    character = match.group()
    at = f"at character {match.start() + 1}"
    if character == "\0":
        return f"holds a NUL character (U+0000) {at}, which PostgreSQL cannot store: remove it"
    return (
        f"holds a lone surrogate (U+{ord(character):04X}) {at}, which is not a character and "
        "cannot be written as UTF-8: remove it"
    )


def unstorable_value_problem(value: Any, where: str) -> str | None:
    """The first text in a JSON-like value (keys included) that cannot be stored, and where."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if problem := unstorable_problem(item):
                return f"{at} {problem}"
        elif isinstance(item, Mapping):
            for key, inner in reversed(list(item.items())):
                if isinstance(key, str) and (problem := unstorable_problem(key)):
                    return f"a key in {at} {problem}"
                stack.append((inner, f"{at}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((inner, f"{at}[{i}]") for i, inner in reversed(list(enumerate(item))))
    return None


def render_template(text: str, /, **values: Any) -> str:
    return parse_template(text).render(values)


def _scan(text: str) -> _Scanner:
    if not isinstance(text, str):
        raise TypeError(f"a template must be a str, not {type(text).__name__}")
    scanner = _Scanner(text)
    scanner.scan_markup(0, len(text), _TOP_LEVEL_DEPTH, nested=False)
    scanner.scan_unstorable()
    # A field's own problems are found before it turns out to be unclosed: report in text order.
    scanner.errors.sort(key=lambda error: (error.line, error.column))
    return scanner


# -- the scanner ------------------------------------------------------------------------------


class _Scanner:
    """Walks a template the way CPython does, recording fields and every error.

    After an error it resumes where a person most likely meant the broken field to end, so
    one mistake does not hide the next ones.
    """

    def __init__(self, text: str):
        self.text = text
        self.errors: list[TemplateError] = []
        self.fields: list[Field] = []
        self._line_starts: list[int] | None = None
        self._closer: _SpecCloser | None = None

    # MarkupIterator_next: literal text up to a brace; '{{' and '}}' are literal braces.
    def scan_markup(self, start: int, end: int, depth: int, nested: bool) -> None:
        text = self.text
        position = start
        while match := _BRACE.search(text, position, end):
            brace = match.start()
            after = brace + 1
            if after < end and text[after] == text[brace]:
                position = after + 1
            elif text[brace] == "}":
                self._report("stray-close-brace", brace, _STRAY_CLOSE)
                position = after
            else:
                position = self._scan_field(brace, end, depth, nested)

    # parse_field: the name runs to '}', ':' or '!' ('[...]' skipped whole); then an optional
    # conversion and an optional spec in which braces are counted. Returns where to go on.
    def _scan_field(self, opening: int, end: int, depth: int, nested: bool) -> int:
        text = self.text
        name_end, resume = self._find_name_end(opening, end)
        if name_end is None:
            return resume
        stop, position = text[name_end], name_end + 1
        conversion = None
        if stop == "!":
            match = _CONVERSION_STOP.search(text, position, end)
            if match is None or text[match.start()] in "{\n":
                return self._unclosed(opening, resume=end if match is None else match.start())
            conversion = text[position : match.start()]
            self._check_conversion(conversion, name_end)
            stop, position = text[match.start()], match.start() + 1
        spec_start = spec_end = position
        inner_brace = None
        if stop == ":":
            spec_end, inner_brace = self._find_spec_end(spec_start, end)
            if spec_end == end or text[spec_end] != "}":
                return self._unclosed(
                    opening, resume=spec_end if inner_brace is None else inner_brace
                )
            position = spec_end + 1
        self._add_field(opening, name_end, spec_start, spec_end, conversion, nested)
        if inner_brace is not None:
            self._scan_spec(inner_brace, spec_start, spec_end, depth)
        return position

    def _unclosed(self, opening: int, resume: int) -> int:
        self._report("unclosed-brace", opening, _UNCLOSED)
        return resume

    def _find_name_end(self, opening: int, end: int) -> tuple[int | None, int]:
        """Index of the '}', ':' or '!' ending the name, or None and where to resume."""
        text = self.text
        position = opening + 1
        while match := _FIELD_NAME_STOP.search(text, position, end):
            found = match.start()
            char = text[found]
            if char == "[":
                closing = text.find("]", found + 1, self._line_end(found, end))
                if closing < 0:
                    self._report("bad-index", found, _UNCLOSED_INDEX)
                    return None, self._resume_after_unclosed_index(found + 1, end)
                position = closing + 1
            elif char in "{\n":
                # CPython: "unexpected '{' in field name". Most likely this field lacks its '}'
                # and the '{' opens the next one, so scanning goes on from there.
                return None, self._unclosed(opening, resume=found)
            else:
                return found, found + 1
        return None, self._unclosed(opening, resume=end)

    def _resume_after_unclosed_index(self, start: int, end: int) -> int:
        match = _BRACE.search(self.text, start, end)
        if match is None:
            return end
        return match.start() if self.text[match.start()] == "{" else match.start() + 1

    def _find_spec_end(self, start: int, end: int) -> tuple[int, int | None]:
        """Index of the '}' closing the spec (else of the line's end), and its first '{'."""
        limit = self._line_end(start, end)
        closing = self._spec_closer().closing_brace(start)
        if closing is not None and closing < limit:
            limit = closing
        inner_brace = self.text.find("{", start, limit)
        return limit, None if inner_brace < 0 else inner_brace

    def _spec_closer(self) -> _SpecCloser:
        if self._closer is None:
            self._closer = _SpecCloser(self.text)
        return self._closer

    def _scan_spec(self, inner_brace: int, spec_start: int, spec_end: int, depth: int) -> None:
        # CPython expands any spec holding a '{' one recursion level down, and gives up at 0.
        if depth - 1 <= 0:
            self._report("spec-too-deep", inner_brace, _SPEC_TOO_DEEP)
        else:
            self.scan_markup(spec_start, spec_end, depth - 1, nested=True)

    def _check_conversion(self, conversion: str, bang: int) -> None:
        if conversion in _CONVERSIONS:
            return
        if not conversion:
            self._report("bad-conversion", bang, _MISSING_CONVERSION)
        else:
            self._report("bad-conversion", bang, _bad_conversion(conversion))

    def _add_field(self, opening, name_end, spec_start, spec_end, conversion, nested) -> None:
        path = self.text[opening + 1 : name_end]
        root = self._check_field_name(path, opening)
        problem = spec_size_problem(self.text[spec_start:spec_end])
        if problem:
            self._report("format-too-large", spec_start, problem + " (at {at})")
        line, column = self.locate(opening)
        self.fields.append(
            Field(
                path=path,
                root=root,
                format_spec=self.text[spec_start:spec_end],
                conversion=conversion or None,
                line=line,
                column=column,
                offset=opening,
                nested=nested,
            )
        )

    # field_name_split: the root runs to the first '.' or '['; FieldNameIterator_next: then
    # '.attribute' and '[index]' parts, and only '.' or '[' may follow a ']'.
    def _check_field_name(self, path: str, opening: int) -> str:
        name_start = opening + 1
        if not path:
            self._report("empty-field", opening, _EMPTY_FIELD)
            return ""
        match = _ACCESSOR.search(path)
        root_end = match.start() if match else len(path)
        root = path[:root_end]
        self._check_root(root, path, name_start)
        self._check_accessors(path, root_end, name_start)
        return root

    def _check_root(self, root: str, path: str, name_start: int) -> None:
        if not root:
            self._report("invalid-name", name_start, _no_root(path))
        elif root.isdecimal():
            self._report("positional-field", name_start, _positional(path))
        elif "]" in root:
            self._report("bad-index", name_start + root.index("]"), _UNOPENED_INDEX)
        elif not root.isidentifier():
            self._report("invalid-name", name_start, _invalid_name(root))

    def _check_accessors(self, path: str, position: int, name_start: int) -> None:
        while position < len(path):
            if path[position] == ".":
                position = self._check_attribute(path, position, name_start)
            else:
                position = self._check_index(path, position, name_start)
            if position < 0:
                return

    def _check_attribute(self, path: str, dot: int, name_start: int) -> int:
        match = _ACCESSOR.search(path, dot + 1)
        attribute_end = match.start() if match else len(path)
        attribute = path[dot + 1 : attribute_end]
        where = name_start + dot
        if not attribute:
            self._report("bad-attribute", where, _EMPTY_ATTRIBUTE)
        elif attribute.startswith("_"):
            self._report("private-access", where, _private(path, attribute))
        elif "]" in attribute:
            self._report("bad-index", where + 1 + attribute.index("]"), _UNOPENED_INDEX)
        elif not attribute.isidentifier():
            self._report("bad-attribute", where, _invalid_attribute(attribute))
        return attribute_end

    def _check_index(self, path: str, bracket: int, name_start: int) -> int:
        where = name_start + bracket
        closing = path.find("]", bracket + 1)
        if closing < 0:  # parse_field already skips to a ']', so only hand-made paths get here
            self._report("bad-index", where, _UNCLOSED_INDEX)
            return -1
        key = path[bracket + 1 : closing]
        if not key:
            self._report("bad-index", where, _EMPTY_INDEX)
        elif key.isdecimal() and _exceeds_ssize_t(key):
            self._report("bad-index", where, _INDEX_TOO_LARGE)
        elif key.startswith("_"):
            self._report("private-access", where, _private(path, key))
        after = closing + 1
        if after < len(path) and path[after] not in ".[":
            self._report("unexpected-after-field", name_start + after, _after_index(path[after]))
            return -1
        return after

    # Characters str.format accepts but no store keeps: found anywhere, fields included.
    def scan_unstorable(self) -> None:
        found = _UNSTORABLE.finditer(self.text)
        for match in itertools.islice(found, _MAX_UNSTORABLE_REPORTS):
            character = match.group()
            code = "nul-character" if character == "\0" else "lone-surrogate"
            self._report(code, match.start(), _unstorable(character))
        if (more := sum(1 for _ in found)) > 0:
            self._report(
                "nul-character" if "\0" in self.text else "lone-surrogate",
                len(self.text),
                f"{more} more characters that cannot be stored follow the ones above (the "
                "text ends at {at}): remove them all",
            )

    # -- positions and reports ----------------------------------------------------------------

    def locate(self, offset: int) -> tuple[int, int]:
        line_starts = self._starts_of_lines()
        line = bisect.bisect_right(line_starts, offset)
        return line, offset - line_starts[line - 1] + 1

    def _line_end(self, offset: int, end: int) -> int:
        """Index of the line break after offset, or end if that comes first."""
        line_starts = self._starts_of_lines()
        next_line = bisect.bisect_right(line_starts, offset)
        return min(end, line_starts[next_line] - 1) if next_line < len(line_starts) else end

    def _starts_of_lines(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in re.finditer("\n", self.text))]
        return self._line_starts

    def _report(self, code: str, offset: int, message: str | Callable[[str], str]) -> None:
        """Record an error; ``message`` is a str.format text or a function, given "line:col"."""
        line, column = self.locate(offset)
        where = f"{line}:{column}"
        text = message(where) if callable(message) else message.format(at=where)
        self.errors.append(TemplateError(code, text, line, column))


class _SpecCloser:
    """Finds the '}' that closes a format spec without walking the spec.

    CPython counts every brace in a spec, so a spec starting at s ends at the first '}' that
    takes the brace balance (opened minus closed since the text's start) below its value at s.
    Walking instead would make a line like '{a:{a:{a:...' quadratic: each unclosed field's
    scan would run to the line's end, then resume at the next field.
    """

    def __init__(self, text: str):
        self._brace_offsets: list[int] = []
        self._balance_after: list[int] = []
        self._closing_offsets: dict[int, list[int]] = {}  # balance after a '}' -> its offsets
        balance = 0
        for match in _BRACE.finditer(text):
            offset = match.start()
            if match.group() == "{":
                balance += 1
            else:
                balance -= 1
                self._closing_offsets.setdefault(balance, []).append(offset)
            self._brace_offsets.append(offset)
            self._balance_after.append(balance)

    def closing_brace(self, start: int) -> int | None:
        braces_before = bisect.bisect_left(self._brace_offsets, start)
        balance = self._balance_after[braces_before - 1] if braces_before else 0
        candidates = self._closing_offsets.get(balance - 1, [])
        index = bisect.bisect_left(candidates, start)
        return candidates[index] if index < len(candidates) else None


def _exceeds_ssize_t(digits: str) -> bool:
    # CPython reads index numbers into a Py_ssize_t; int() of a huge text would itself fail.
    significant = "".join(str(unicodedata.decimal(char)) for char in digits).lstrip("0")
    return len(significant) > len(str(sys.maxsize)) or int(significant or "0") > sys.maxsize


# -- messages: what is wrong, where, and what would be accepted --------------------------------

_UNCLOSED = (
    "'{{' at {at} is never closed: close the field with '}}' or write '{{{{' for a literal brace"
)
_STRAY_CLOSE = "'}}' at {at} has no matching '{{': write '}}}}' for a literal brace"
_EMPTY_FIELD = (
    "field at {at} has no variable name: name the value, e.g. '{{name}}', "
    "or write '{{{{' and '}}}}' for literal braces"
)
_MISSING_CONVERSION = "'!' at {at} has no conversion after it: use !r, !s or !a, or remove the '!'"
_UNCLOSED_INDEX = "'[' at {at} is never closed: close the index with ']', e.g. '{{name[key]}}'"
_UNOPENED_INDEX = "']' at {at} has no matching '[': write an index as '[key]', e.g. '{{name[key]}}'"
_EMPTY_INDEX = "empty index '[]' at {at}: put a key or a number inside, e.g. '[key]' or '[0]'"
_INDEX_TOO_LARGE = f"index at {{at}} is too large: index numbers go up to {sys.maxsize}"
_EMPTY_ATTRIBUTE = "'.' at {at} is not followed by an attribute name: write e.g. '{{name.attr}}'"
_SPEC_TOO_DEEP = (
    "'{{' at {at} nests fields too deeply: a format spec may contain fields, as in "
    "'{{value:{{width}}}}', but their own format specs may not"
)


def _no_root(path: str):
    return lambda at: (
        f"field '{{{path}}}' at {at} has no variable name before {path[0]!r}: "
        f"start it with a name, e.g. '{{name{path}}}'"
    )


def _positional(path: str):
    return lambda at: (
        f"field '{{{path}}}' at {at} is positional: only named variables are accepted, "
        "e.g. '{name}'"
    )


def _invalid_name(root: str):
    if root.strip() != root and root.strip().isidentifier():
        return lambda at: (
            f"variable name {root!r} at {at} has spaces around it: write it without them, "
            f"e.g. {root.strip()!r}"
        )
    return lambda at: (
        f"variable name {root!r} at {at} is not a Python identifier: use letters, digits and "
        "underscores, not starting with a digit, e.g. 'my_var'"
    )


def _bad_conversion(conversion: str):
    shown = _short_repr.repr("!" + conversion)
    return lambda at: f"conversion {shown} at {at} is not supported: use !r, !s or !a"


def _private(path: str, name: str):
    return lambda at: (
        f"field '{{{path}}}' at {at} reaches {name!r}: names starting with '_' are private "
        "to the object and templates may not use them"
    )


def _invalid_attribute(attribute: str):
    return lambda at: (
        f"attribute {attribute!r} after '.' at {at} is not a Python identifier: use letters, "
        f"digits and underscores, or an index such as '[{attribute}]'"
    )


def _unstorable(character: str):
    if character == "\0":
        return (
            "NUL character (U+0000) at {at} cannot be stored: PostgreSQL and MLflow's database "
            "refuse it in text; remove it (to show a zero byte, write the words, e.g. 'NUL')"
        )
    code = f"U+{ord(character):04X}"
    return (
        f"lone surrogate ({code}) at {{at}} is half of a UTF-16 pair, not a character, and "
        "cannot be written as UTF-8; remove it or replace the pair with the character it "
        "was meant to be (e.g. an emoji pasted from a broken source)"
    )


def _after_index(char: str):
    return lambda at: (
        f"{char!r} at {at} follows ']': only '.' or '[' may follow an index, "
        "e.g. '{name[key].attr}' or '{name[key][0]}'"
    )


# -- limits on format specs and on rendered text ----------------------------------------------

# A field inside a spec (they cannot nest deeper), blanked when a spec's own numbers are read.
_NESTED_FIELD = re.compile(r"\{[^{}]*\}")
# str.format reads any Unicode decimal digit as part of a width or a precision.
_DIGITS = re.compile(r"\d+")
# Dates format with strftime codes, where '%10Y' (a glibc extension) pads to a width.
_STRFTIME_SPEC = re.compile(r"%[-_0^#]*\d*[A-Za-z]")
_STRFTIME_WIDTH = re.compile(r"%%|%[-_0^#]*(\d+)")
_ALIGN = "<>=^"
_DATE_TYPES = (datetime.date, datetime.time)


def _spec_numbers(spec: str, *, strftime: bool) -> Iterator[tuple[str, int, str]]:
    """("width" or "precision", index in spec, digits) for each number a spec asks for.

    Every number counts, wherever it stands: a spec that str.format would refuse anyway is
    refused either way, and one it accepts has only its width and precision as numbers.
    """
    if strftime:
        for match in _STRFTIME_WIDTH.finditer(spec):
            if match.group(1):
                yield "width", match.start(1), match.group(1)
        return
    # [[fill]align]: a fill may be a digit, and is no number.
    start = 2 if len(spec) >= 2 and spec[1] in _ALIGN else 1 if spec[:1] in _ALIGN else 0
    for match in _DIGITS.finditer(spec, start):
        before = spec[match.start() - 1] if match.start() else ""
        yield ("precision" if before == "." else "width"), match.start(), match.group()


def _limit_of(kind: str, limits: InputLimits) -> int:
    return limits.format_width if kind == "width" else limits.format_precision


def _exceeds(digits: str, limit: int) -> bool:
    significant = "".join(str(unicodedata.decimal(char)) for char in digits).lstrip("0")
    return len(significant) > len(str(limit)) or int(significant or "0") > limit


def _shown_number(digits: str) -> str:
    significant = "".join(str(unicodedata.decimal(char)) for char in digits).lstrip("0")
    if len(significant) > 30:
        return f"of {len(significant):,} digits"
    return f"{int(significant or '0'):,}"


class _BoundedRender:
    """str.format's own walk (MarkupIterator, then each field: look up, convert, expand the
    spec, format), with every spec checked before it formats and the length counted as the
    text grows: nothing past the limits is ever built.

    Fields come in the order the scanner recorded them (each field before the fields of its
    spec), so the n-th field met is ``template.fields[n]`` and errors can say where it is.
    """

    def __init__(self, template: ParsedTemplate, values: Mapping[str, Any], limits: InputLimits):
        self.template = template
        self.values = values
        self.limits = limits
        self.length = 0
        self.next_field = 0

    def text(self) -> str:
        pieces: list[str] = []
        self._markup(self.template.text, _TOP_LEVEL_DEPTH, pieces)
        return "".join(pieces)

    def _markup(self, text: str, depth: int, pieces: list[str]) -> None:
        for literal, name, spec, conversion in _string.formatter_parser(text):
            if literal:
                self._add(literal, pieces, None)
            if name is not None:
                each = self._field_written(name, spec, conversion)
                self._add(self._format(each, depth), pieces, each)

    def _field_written(self, name: str, spec: str, conversion: str | None) -> Field:
        fields = self.template.fields
        if self.next_field < len(fields):
            each = fields[self.next_field]
        else:  # a hand-built ParsedTemplate: no position to give
            each = Field(name, name, spec, conversion, 0, 0, 0, nested=False)
        self.next_field += 1
        return each

    def _format(self, each: Field, depth: int) -> str:
        value = _look_up(each.path, self.values)
        converted = _convert(value, each.conversion)
        spec = each.format_spec
        if "{" in spec:
            if depth - 1 <= 0:
                raise TemplateRenderError(
                    "cannot render the template: Max string recursion exceeded"
                )
            parts: list[str] = []
            self._markup(spec, depth - 1, parts)
            spec = "".join(parts)
        self._check_spec(each, spec, converted)
        try:
            return format(converted, spec)
        except Exception as error:
            raise _format_error(each, spec, converted, error) from error

    def _check_spec(self, each: Field, spec: str, value: Any) -> None:
        if not spec:
            return
        shown = value._value if isinstance(value, _JsonView) else value
        strftime = isinstance(shown, _DATE_TYPES)
        for kind, _, digits in _spec_numbers(spec, strftime=strftime):
            limit = _limit_of(kind, self.limits)
            if _exceeds(digits, limit):
                written = f"format spec {each.format_spec!r}"
                if spec != each.format_spec:
                    written += f", which the values make {spec!r}"
                raise RenderLimitError(
                    f"field {each.path!r}{_at(each)} asks for a {kind} of "
                    f"{_shown_number(digits)} with {written}: a {kind} may be at most "
                    f"{limit:,} here"
                )

    def _add(self, piece: str, pieces: list[str], each: Field | None) -> None:
        self.length += len(piece)
        if self.length > self.limits.rendered_length:
            where = f", at field {each.path!r}{_at(each)}" if each is not None else ""
            raise RenderLimitError(
                f"the rendered text would be longer than {self.limits.rendered_length:,} "
                f"characters, the most rendered here (it passes that{where}): shorten the "
                "values or the template"
            )
        pieces.append(piece)


def _at(each: Field) -> str:
    return f" at {each.line}:{each.column}" if each.line else ""


# -- rendering JSON-like values ----------------------------------------------------------------

_JSON_CONTAINERS = (Mapping, list)


class _JsonView:
    """Read-only view that lets ``{obj.key}`` read ``obj["key"]`` in JSON-like values.

    A preview form sends nested JSON; this spares its users writing ``{obj[key]}``. Formatting
    the view formats the value, so ``{obj}`` reads exactly as it would without the view.
    """

    __slots__ = ("_path", "_value")

    def __init__(self, value: Any, path: str):
        self._value = value
        self._path = path

    def __getattr__(self, name: str) -> Any:
        # Only names that are not real attributes get here; the view's own are all private.
        if name.startswith("_"):
            raise AttributeError(f"{name!r} is private: templates may not use it")
        value = self._value
        if not isinstance(value, Mapping):
            raise AttributeError(f"{self._path!r} is a {_type_name(value)} and has no keys")
        try:
            item = value[name]
        except KeyError:
            raise AttributeError(f"{self._path!r} has no key {name!r}") from None
        return _viewed(item, f"{self._path}.{name}")

    def __getitem__(self, key: Any) -> Any:
        return _viewed(self._value[key], f"{self._path}[{key}]")

    def __format__(self, format_spec: str) -> str:
        return format(self._value, format_spec)

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        return repr(self._value)


def _viewed(value: Any, path: str) -> Any:
    return _JsonView(value, path) if isinstance(value, _JSON_CONTAINERS) else value


def _type_name(value: Any) -> str:
    if isinstance(value, _JsonView):
        value = value._value
    return type(value).__name__


# -- explaining a failed render (the slow path) ------------------------------------------------


def _explain_failure(
    template: ParsedTemplate, values: dict[str, Any], error: Exception
) -> TemplateRenderError:
    missing = [name for name in template.variables if name not in values]
    if missing:
        return MissingVariablesError(missing)
    # Fields in textual order put each field before the fields of its spec, as str.format
    # evaluates them; the first field that fails on its own is the one to blame.
    for each in template.fields:
        try:
            _render_field(each, values)
        except TemplateRenderError as problem:
            return problem
    return TemplateRenderError(f"cannot render the template: {type(error).__name__}: {error}")


def _render_field(each: Field, values: dict[str, Any]) -> None:
    value = _look_up(each.path, values)
    try:
        spec = each.format_spec.format_map(values) if "{" in each.format_spec else each.format_spec
    except Exception:
        return  # a field inside the spec fails; it comes next in textual order
    try:
        value = _convert(value, each.conversion)
        format(value, spec)
    except Exception as error:
        raise _format_error(each, spec, value, error) from error


def _format_error(each: Field, spec: str, value: Any, error: Exception) -> FieldFormatError:
    conversion = f" with conversion !{each.conversion}" if each.conversion else ""
    shown_spec = repr(spec) if spec == each.format_spec else f"{each.format_spec!r} (= {spec!r})"
    return FieldFormatError(
        each.path,
        spec,
        f"field {each.path!r}{conversion} with format spec {shown_spec} cannot format "
        f"{_short_repr.repr(value)} ({_type_name(value)}): {error}",
    )


def _convert(value: Any, conversion: str | None) -> Any:
    if conversion == "r":
        return repr(value)
    if conversion == "s":
        return str(value)
    if conversion == "a":
        return ascii(value)
    return value


def _look_up(path: str, values: dict[str, Any]) -> Any:
    root, accessors = _string.formatter_field_name_split(path)
    value = values[root]
    reached = root
    for is_attribute, key in accessors:
        try:
            value = getattr(value, key) if is_attribute else value[key]
        except Exception as error:
            raise FieldLookupError(
                path, _lookup_message(path, reached, value, key, error)
            ) from None
        reached = f"{reached}.{key}" if is_attribute else f"{reached}[{key}]"
    return value


def _lookup_message(path: str, reached: str, value: Any, key: Any, error: Exception) -> str:
    kind = _type_name(value)
    if isinstance(error, AttributeError):
        # Through a view '.name' reads a key; on any other object it reads an attribute.
        if not isinstance(value, _JsonView):
            problem = f"{reached!r} ({kind}) has no attribute {key!r}"
        elif isinstance(value._value, Mapping):
            problem = f"{reached!r} ({kind}) has no key {key!r}"
        else:
            problem = f"{reached!r} is a {kind}, not an object with keys: use an index, e.g. [0]"
    elif isinstance(error, KeyError):
        problem = f"{reached!r} ({kind}) has no key {key!r}"
    elif isinstance(error, IndexError):
        problem = f"index {key!r} is out of range for {reached!r} ({kind})"
    else:
        problem = f"{reached!r} ({kind}) cannot be indexed with {key!r}: {error}"
    return f"field {path!r}: {problem}"
