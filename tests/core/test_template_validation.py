"""Template validation: every error, where it is, and what would be accepted instead."""

from __future__ import annotations

import time

import pytest

from registry_ui.core.template import (
    TemplateError,
    TemplateValidationError,
    parse_template,
    validate_template,
)


def codes_and_positions(text: str) -> list[tuple[str, int, int]]:
    return [(error.code, error.line, error.column) for error in validate_template(text)]


# -- valid templates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello {name}, your balance is ${balance:.2f}",
        "Config: {settings[api][key]} at {timestamp:%Y-%m-%d}",
        "🔥 {hook_text} - {cta} #trending #{hashtag}",
        "{obj.attr} {config[key]} {items[0]} {a[b].c[d]}",
        "{value:{width}.{precision}f}",
        "{x!r:>10} {x!s} {x!a:}",
        "{count:d} {price:,.2f} {name:^20}",
        "{{literal}} and }} and {{",
        "",
        "no fields at all",
        "line one {a}\nline two {b}\n",
        "{café} {名前} {_private_root}",
        "{a[key with spaces]} {a[-1]} {a[:]}",
        "{value:{{}}}",
    ],
)
def test_it_accepts_what_str_format_accepts_with_named_fields(text):
    assert validate_template(text) == []


def test_it_returns_the_fields_in_textual_order_with_their_positions():
    template = parse_template("Hi {name!r:>10}\n{value:{width}.{precision}f}")

    assert [(f.path, f.line, f.column, f.offset, f.nested) for f in template.fields] == [
        ("name", 1, 4, 3, False),
        ("value", 2, 1, 16, False),
        ("width", 2, 8, 23, True),
        ("precision", 2, 16, 31, True),
    ]
    assert template.fields[0].conversion == "r"
    assert template.fields[0].format_spec == ">10"
    assert template.fields[1].format_spec == "{width}.{precision}f"


def test_it_lists_each_root_variable_once_in_order_of_first_appearance():
    template = parse_template("{b} {a.x} {b:>3} {c[k]} {a}")

    assert template.variables == ("b", "a", "c")
    assert [f.root for f in template.fields] == ["b", "a", "b", "c", "a"]


def test_it_keeps_the_design_note_variables_in_order():
    template = parse_template("🔥 {hook_text} - {cta} #trending #{hashtag}")

    assert template.variables == ("hook_text", "cta", "hashtag")


# -- each kind of error, with its position ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello {name", [("unclosed-brace", 1, 7)]),
        ("{", [("unclosed-brace", 1, 1)]),
        ("{a:>10", [("unclosed-brace", 1, 1)]),
        ("{a!r", [("unclosed-brace", 1, 1)]),
        ("{a{b}", [("unclosed-brace", 1, 1)]),
        ("a } b", [("stray-close-brace", 1, 3)]),
        ("}", [("stray-close-brace", 1, 1)]),
        ("Value: {}", [("empty-field", 1, 8)]),
        ("{:>10}", [("empty-field", 1, 1)]),
        ("{!r}", [("empty-field", 1, 1)]),
        ("{0}", [("positional-field", 1, 2)]),
        ("{12.attr}", [("positional-field", 1, 2)]),
        ("{1abc}", [("invalid-name", 1, 2)]),
        ("{my-var}", [("invalid-name", 1, 2)]),
        ("{ name}", [("invalid-name", 1, 2)]),
        ("{.attr}", [("invalid-name", 1, 2)]),
        ("{[0]}", [("invalid-name", 1, 2)]),
        ("{x!z}", [("bad-conversion", 1, 3)]),
        ("{x!}", [("bad-conversion", 1, 3)]),
        ("{x!rs}", [("bad-conversion", 1, 3)]),
        ("{x!:>3}", [("bad-conversion", 1, 3)]),
        ("{a[}", [("bad-index", 1, 3)]),
        ("{a[]}", [("bad-index", 1, 3)]),
        ("{a]}", [("bad-index", 1, 3)]),
        ("{a.b]}", [("bad-index", 1, 5)]),
        ("{a[99999999999999999999]}", [("bad-index", 1, 3)]),
        ("{a[0]x}", [("unexpected-after-field", 1, 6)]),
        ("{a.}", [("bad-attribute", 1, 3)]),
        ("{a..b}", [("bad-attribute", 1, 3)]),
        ("{a.b-c}", [("bad-attribute", 1, 3)]),
        ("{obj.__class__}", [("private-access", 1, 5)]),
        ("{obj._x}", [("private-access", 1, 5)]),
        ("{d[_k]}", [("private-access", 1, 3)]),
        ("{a.b._c}", [("private-access", 1, 5)]),
        ("{a:{b:{c}}}", [("spec-too-deep", 1, 7)]),
        ("{a:{b:{{}}}}", [("spec-too-deep", 1, 7)]),
    ],
)
def test_it_reports_each_kind_of_error_at_its_line_and_column(text, expected):
    assert codes_and_positions(text) == expected


def test_it_validates_fields_inside_format_specs_with_the_same_rules():
    assert codes_and_positions("{value:{0}.{}f} {x:{w.}}") == [
        ("positional-field", 1, 9),
        ("empty-field", 1, 12),
        ("bad-attribute", 1, 22),
    ]


def test_it_counts_lines_from_one_and_columns_in_characters():
    text = "first line\n🔥🔥 {ok}\n  é {bad-name} }"

    assert codes_and_positions(text) == [("invalid-name", 3, 6), ("stray-close-brace", 3, 16)]


def test_it_reports_every_error_in_one_pass():
    text = "Hi {name\n{0} and {} and }\n{obj._secret!x} {a:{b:{c}}}"

    assert codes_and_positions(text) == [
        ("unclosed-brace", 1, 4),
        ("positional-field", 2, 2),
        ("empty-field", 2, 9),
        ("stray-close-brace", 2, 16),
        ("private-access", 3, 5),
        ("bad-conversion", 3, 13),
        ("spec-too-deep", 3, 23),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello {name\nBye}", [("unclosed-brace", 1, 7), ("stray-close-brace", 2, 4)]),
        ("Pay {price:.2f\nTotal: }", [("unclosed-brace", 1, 5), ("stray-close-brace", 2, 8)]),
        ("{x!r\n}", [("unclosed-brace", 1, 1), ("stray-close-brace", 2, 1)]),
        ("{a[\n]}", [("bad-index", 1, 3)]),
    ],
)
def test_it_refuses_a_field_that_spans_lines_though_str_format_would_not(text, expected):
    # str.format reads "{price:.2f\nTotal: }" as one field with a strange spec; a person meant
    # to close the field on its line.
    assert codes_and_positions(text) == expected


def test_it_goes_on_after_a_field_left_open_at_a_line_break():
    text = "Price: {price:.2f\nTotal: {total:.2f} then }"

    assert codes_and_positions(text) == [("unclosed-brace", 1, 8), ("stray-close-brace", 2, 25)]


def test_it_goes_on_after_an_unclosed_spec_at_its_first_inner_field():
    text = "{a:{0}"

    assert codes_and_positions(text) == [("unclosed-brace", 1, 1), ("positional-field", 1, 5)]


def test_it_goes_on_after_an_unclosed_index():
    assert codes_and_positions("{a[} and {0}") == [("bad-index", 1, 3), ("positional-field", 1, 11)]


# -- messages ---------------------------------------------------------------------------------


def test_it_says_what_is_wrong_where_and_what_would_be_accepted():
    [error] = validate_template("Hello {name")

    assert error == TemplateError(
        code="unclosed-brace",
        message="'{' at 1:7 is never closed: close the field with '}' or write '{{' for a literal "
        "brace",
        line=1,
        column=7,
    )
    assert str(error) == f"1:7: {error.message}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Value: {}", "name the value, e.g. '{name}'"),
        ("a } b", "write '}}' for a literal brace"),
        ("{0}", "only named variables are accepted"),
        ("{my-var}", "use letters, digits and underscores"),
        ("{ name}", "has spaces around it: write it without them, e.g. 'name'"),
        ("{x!z}", "use !r, !s or !a"),
        ("{a[]}", "put a key or a number inside"),
        ("{a.b-c}", "or an index such as '[b-c]'"),
        ("{obj.__class__}", "names starting with '_' are private"),
        ("{a:{b:{c}}}", "their own format specs may not"),
        ("{a[0]x}", "only '.' or '[' may follow an index"),
    ],
)
def test_each_message_says_what_would_be_accepted(text, expected):
    [error] = validate_template(text)

    assert expected in error.message


def test_the_exception_lists_every_error_and_carries_them():
    with pytest.raises(TemplateValidationError) as raised:
        parse_template("Value: {} and {name")

    assert [error.code for error in raised.value.errors] == ["empty-field", "unclosed-brace"]
    assert str(raised.value).splitlines() == [
        "invalid template, 2 errors:",
        *(f"- {error}" for error in raised.value.errors),
    ]


def test_the_exception_is_a_value_error_naming_the_single_error():
    with pytest.raises(ValueError, match=r"^invalid template: 1:7: '\{' at 1:7 is never closed"):
        parse_template("Hello {name")


def test_it_refuses_what_is_not_a_string():
    with pytest.raises(TypeError, match="must be a str, not bytes"):
        validate_template(b"{name}")


# -- caching ----------------------------------------------------------------------------------


def test_it_parses_a_text_once_and_returns_the_same_object():
    text = "cached {once}"

    assert parse_template(text) is parse_template("cached {" + "once}")


# -- cost on hostile input --------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["{a:", "{a:{b:", "{a[", "{a!", "{a:}}", "{a:{b}{c}}"])
def test_it_validates_50_kb_of_broken_fields_in_linear_time(unit):
    # Each unclosed field is rescanned from the next one: a naive scan is quadratic here and
    # took minutes for 100 KB of "{a:".
    text = unit * (50_000 // len(unit))
    started = time.perf_counter()

    validate_template(text)

    assert time.perf_counter() - started < 5


# -- characters no store keeps ----------------------------------------------------------------


def test_a_nul_character_is_refused_at_its_line_and_column():
    errors = validate_template("Hello {name}\nbye\x00 now")

    assert [(e.code, e.line, e.column) for e in errors] == [("nul-character", 2, 4)]
    assert "U+0000" in errors[0].message and "2:4" in errors[0].message


def test_a_lone_surrogate_is_refused_even_inside_a_field_with_its_code_point():
    errors = validate_template("Hi {name}\n{x} \ud83d and {y\udc00}")

    assert ("lone-surrogate", 2, 5) in [(e.code, e.line, e.column) for e in errors]
    assert ("lone-surrogate", 2, 13) in [(e.code, e.line, e.column) for e in errors]
    assert "U+D83D" in str(TemplateValidationError(errors))


def test_a_proper_surrogate_pair_written_as_one_character_is_accepted():
    assert validate_template("Launch day 🚀 {name}") == []


def test_a_text_full_of_nul_characters_gets_a_bounded_list_of_errors():
    errors = validate_template("x" + "\x00" * 500)

    assert len(errors) == 21
    assert "480 more characters" in errors[-1].message
