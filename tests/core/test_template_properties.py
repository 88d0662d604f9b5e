"""Properties over many texts: validation agrees with Python's parser, render with str.format.

Python's parser (string.Formatter().parse, _string.formatter_field_name_split) is the oracle
here: it gives no positions and stops at the first error, which is why the validator exists.
"""

from __future__ import annotations

import _string
import datetime
import string
from types import SimpleNamespace

from hypothesis import assume, given
from hypothesis import strategies as st

from registry_ui.core.diff import compare_templates, line_diff, word_diff
from registry_ui.core.limits import InputLimits
from registry_ui.core.template import (
    TemplateError,
    TemplateRenderError,
    TemplateValidationError,
    parse_template,
    validate_template,
)

ERROR_CODES = {
    "unclosed-brace",
    "stray-close-brace",
    "empty-field",
    "positional-field",
    "invalid-name",
    "bad-conversion",
    "bad-index",
    "unexpected-after-field",
    "bad-attribute",
    "private-access",
    "spec-too-deep",
    "format-too-large",
    "nul-character",
    "lone-surrogate",
}

# -- texts of every kind, biased towards the characters that matter to the parser --------------

PARSER_CHARS = [*"{}{}{}!:[].0123456789abxy_ -\n", "é", "🔥", "名"]
PIECES = ["{", "}", "{{", "}}", "{name", "name}", "{a.b}", "{a[0]}", "!r", "!x", ":", ":>5",
          "[", "]", ".", "._x", "0", "a", "_k", "\n", " ", "{w}", "{{}}"]  # fmt: skip

any_text = st.one_of(
    st.text(st.one_of(st.sampled_from(PARSER_CHARS), st.characters()), max_size=30),
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
)


def python_accepts(text: str, depth: int = 2) -> None:
    """Raises unless str.format's parser accepts every field as a named variable."""
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        first, rest = _string.formatter_field_name_split(name)
        list(rest)  # the attribute and index parts are checked lazily
        assert isinstance(first, str) and first, f"positional field {name!r}"
        assert conversion in (None, "r", "s", "a"), f"conversion {conversion!r}"
        if "{" in spec:  # str.format expands such specs, one recursion level down
            assert depth > 1, "Max string recursion exceeded"
            python_accepts(spec, depth - 1)


class Anything:
    """A value that has every attribute and item and formats with any spec."""

    def __getattr__(self, name):
        return self

    def __getitem__(self, key):
        return self

    def __format__(self, spec):
        return "*"


@given(any_text)
def test_it_never_raises_and_each_error_points_into_the_text(text):
    errors = validate_template(text)

    lines = text.split("\n")
    for error in errors:
        assert isinstance(error, TemplateError)
        assert error.code in ERROR_CODES
        assert 1 <= error.line <= len(lines)
        assert 1 <= error.column <= len(lines[error.line - 1]) + 1
        assert f"{error.line}:{error.column}" in error.message


@given(any_text)
def test_parsing_raises_nothing_but_a_validation_error(text):
    try:
        parse_template(text)
    except TemplateValidationError as error:
        assert error.errors == validate_template(text)
    else:
        assert validate_template(text) == []


@given(any_text)
def test_every_text_it_accepts_python_accepts(text):
    if validate_template(text):
        return

    python_accepts(text)
    fields = parse_template(text).fields
    # A converted value is a str, which not every spec suits: only then may str.format refuse.
    if not any(f.conversion and f.format_spec for f in fields):
        values = {name: Anything() for name in parse_template(text).variables}
        text.format(**values)


# -- valid templates from a grammar, and values of every kind ----------------------------------

ROOTS = ["name", "count", "user", "é", "_root"]
SPEC_ROOTS = ["w", "p"]
ATTRIBUTES = ["a", "b", "name"]  # none of them a dict or list method, which views never expose
KEYS = ["a", "k", "x y", "0", "1"]
SPECS = ["", ">8", "<3", "^5", ".2f", "d", "x", ",", "%Y", "s", "+", "05", ".1%", "=^9",
         "{w}", "{w}.{p}f", ">{w}", "{p:>2}"]  # fmt: skip

literals = st.one_of(
    # NUL is refused as unstorable (tested in test_template_validation.py), not a grammar case.
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="{}\x00"), max_size=8),
    st.sampled_from(["{{", "}}", "\n", " 🔥 "]),
)


@st.composite
def fields(draw, roots: list[str] = ROOTS) -> str:
    root = draw(st.sampled_from(roots))
    accessors = draw(
        st.lists(
            st.one_of(
                st.sampled_from(ATTRIBUTES).map(lambda name: "." + name),
                st.sampled_from(KEYS).map(lambda key: f"[{key}]"),
            ),
            max_size=2,
        )
    )
    conversion = draw(st.sampled_from(["", "", "!r", "!s", "!a"]))
    spec = draw(st.sampled_from(SPECS))
    return "{" + root + "".join(accessors) + conversion + (":" + spec if spec else "") + "}"


templates = st.lists(st.one_of(literals, fields()), max_size=6).map("".join)

scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, width=32),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.just(datetime.date(2024, 5, 17)),
)
json_keys = st.sampled_from([*ATTRIBUTES, *KEYS, 0, 1])
shallow_json = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(json_keys, scalars, max_size=2),
)
json_values = st.one_of(
    shallow_json,
    st.lists(shallow_json, max_size=2),
    st.dictionaries(json_keys, shallow_json, max_size=3),
)
objects = st.builds(
    lambda attributes: SimpleNamespace(**attributes),
    st.dictionaries(st.sampled_from(ATTRIBUTES), shallow_json, max_size=2),
)
values_by_name = st.dictionaries(
    st.sampled_from(ROOTS + SPEC_ROOTS),
    st.one_of(st.integers(0, 12), scalars, json_values, objects),
    max_size=6,
)


class AttrDict(dict):
    """A dict whose keys read as attributes too, as the views render JSON values."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def as_attr_dicts(value):
    if isinstance(value, dict):
        return AttrDict({key: as_attr_dicts(item) for key, item in value.items()})
    if isinstance(value, list):
        return [as_attr_dicts(item) for item in value]
    return value


EVERY_KEY = [*ATTRIBUTES, *KEYS, 0, 1]


def with_every_key(leaf: st.SearchStrategy) -> st.SearchStrategy:
    leaves = st.lists(leaf, min_size=len(EVERY_KEY), max_size=len(EVERY_KEY))
    return leaves.map(lambda values: dict(zip(EVERY_KEY, values, strict=True)))


# Templates over one JSON value that has every key they may ask for, so most paths resolve.
user_templates = st.lists(st.one_of(literals, fields(roots=["user"])), max_size=6).map("".join)
full_object = with_every_key(scalars)
user_values = st.fixed_dictionaries(
    {
        "user": with_every_key(
            st.one_of(full_object, full_object, scalars, st.lists(full_object, min_size=2))
        ),
        "w": st.integers(0, 12),
        "p": st.integers(0, 5),
    }
)


@given(templates)
def test_every_template_from_the_grammar_is_valid(text):
    assert validate_template(text) == []


@given(st.one_of(templates, user_templates), st.one_of(values_by_name, user_values))
def test_render_gives_what_str_format_gives_or_a_render_error_when_it_fails(text, values):
    oracle_values = {name: as_attr_dicts(value) for name, value in values.items()}
    try:
        expected = text.format(**oracle_values)
    except Exception:
        expected = None

    try:
        rendered = parse_template(text).render(values)
    except TemplateRenderError:
        rendered = None

    assert rendered == expected


@given(templates, values_by_name)
def test_render_gives_exactly_str_format_for_values_without_json(text, values):
    plain = {name: value for name, value in values.items() if not isinstance(value, dict | list)}
    try:
        expected = text.format(**plain)
    except Exception:
        expected = None

    try:
        rendered = parse_template(text).render(plain)
    except TemplateRenderError:
        rendered = None

    assert rendered == expected


# Past every width, precision and length the grammar and its values can reach.
NO_LIMIT_REACHED = InputLimits(
    format_width=10**100, format_precision=10**100, rendered_length=10**8
)


@given(st.one_of(templates, user_templates), st.one_of(values_by_name, user_values))
def test_the_bounded_render_gives_what_render_gives_and_fails_as_it_fails(text, values):
    template = parse_template(text)
    try:
        expected = template.render(values)
    except TemplateRenderError as error:
        # render refuses a spec past the environment's limits, which these pass on purpose.
        assume(not str(error).startswith("not rendered:"))
        expected = (type(error), str(error))

    try:
        rendered = template.render_bounded(values, NO_LIMIT_REACHED)
    except TemplateRenderError as error:
        rendered = (type(error), str(error))

    assert rendered == expected


# -- diffs keep every character ---------------------------------------------------------------


@given(any_text, any_text, st.sampled_from([0, 50, 1_000_000]))
def test_word_segments_join_back_to_each_side(old, new, max_pairs):
    segments = word_diff(old, new, max_pairs=max_pairs)

    assert "".join(s["text"] for s in segments if s["op"] != "insert") == old
    assert "".join(s["text"] for s in segments if s["op"] != "delete") == new
    assert all(s["text"] for s in segments)


@given(any_text, any_text)
def test_line_hunks_join_back_to_each_side(old, new):
    hunks = line_diff(old, new)

    assert "\n".join(line for hunk in hunks for line in hunk["old"]) == old
    assert "\n".join(line for hunk in hunks for line in hunk["new"]) == new


brace_free = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="{}\x00"), max_size=60
)


@given(brace_free, brace_free)
def test_the_words_of_every_replaced_hunk_join_back_to_its_lines(old, new):
    diff = compare_templates(old, new)

    for hunk in diff["template_diff"]["lines"]:
        if hunk["op"] == "replace":
            words = hunk["words"]
            assert "".join(w["text"] for w in words if w["op"] != "insert") == "\n".join(
                hunk["old"]
            )
            assert "".join(w["text"] for w in words if w["op"] != "delete") == "\n".join(
                hunk["new"]
            )
        else:
            assert "words" not in hunk
