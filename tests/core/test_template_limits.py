"""Format specs cannot build gigabytes: widths and precisions past the limits are errors at
validation (with line:column), and a bounded render refuses before it builds anything past
the limits, whether the spec is written in the template or given by a value."""

from __future__ import annotations

import datetime

import pytest

from registry_ui.core.limits import DEFAULT_LIMITS, InputLimits
from registry_ui.core.template import (
    FieldLookupError,
    MissingVariablesError,
    RenderLimitError,
    parse_template,
    validate_template,
)
from tests.support.limited import run_limited

WIDTH = DEFAULT_LIMITS.format_width
PRECISION = DEFAULT_LIMITS.format_precision


def codes_and_places(text: str, limits: InputLimits = DEFAULT_LIMITS):
    return [(e.code, e.line, e.column) for e in validate_template(text, limits)]


def test_a_width_past_the_limit_is_an_error_at_its_line_and_column():
    errors = validate_template("Hi\n  {x:>999999999}")

    assert [(e.code, e.line, e.column) for e in errors] == [("width-too-large", 2, 7)]
    assert str(errors[0]) == (
        f"2:7: width 999,999,999 at 2:7 is too large: a format spec's width may be at most "
        f"{WIDTH:,}, e.g. '{{name:>20}}'"
    )


def test_a_precision_past_the_limit_is_an_error_where_it_is_written():
    assert codes_and_places("{x:,.999999999f}") == [("precision-too-large", 1, 6)]


def test_widths_and_precisions_up_to_the_limits_are_accepted():
    assert validate_template(f"{{x:>{WIDTH}}} {{y:{WIDTH}.{PRECISION}f}} {{z:0{WIDTH}}}") == []


def test_a_width_in_the_spec_of_a_field_inside_a_spec_is_checked_too():
    assert codes_and_places("{x:{w:>99999}}") == [("width-too-large", 1, 8)]
    assert codes_and_places("{x:{fill}>99999}") == [("width-too-large", 1, 11)]
    assert codes_and_places("{x:>{w}}") == []  # known only at render time


def test_digits_written_in_any_script_count_as_str_format_reads_them():
    assert codes_and_places("{x:٩٩٩٩٩}") == [("width-too-large", 1, 4)]


def test_a_date_spec_counts_only_the_widths_of_its_codes():
    assert codes_and_places("{when:%d.%m.2024 %Y}") == []
    assert codes_and_places("{when:%%99999 %Y}") == []
    assert codes_and_places("{when:%099999Y}") == [("width-too-large", 1, 9)]


def test_the_limits_are_those_given():
    small = InputLimits(format_width=10, format_precision=2)

    assert codes_and_places("{x:>11} {y:.3f}", small) == [
        ("width-too-large", 1, 5),
        ("precision-too-large", 1, 13),
    ]
    assert validate_template("{x:>11}", limits=None) == []  # str.format's own rules only


def test_parsing_still_accepts_a_version_past_the_limits_so_it_loads():
    assert parse_template("{x:>999999999}").variables == ("x",)


# -- the bounded render -----------------------------------------------------------------------


def test_it_renders_what_str_format_renders():
    text = "{a:>8}|{b:.3f}|{c!r:^9}|{d[k]}|{e:%Y-%m-%d}|{f:{w}.{p}f}"
    values = {
        "a": "hi",
        "b": 3.14159,
        "c": "x",
        "d": {"k": 1},
        "e": datetime.date(2024, 5, 17),
        "f": 2.5,
        "w": 7,
        "p": 2,
    }

    assert parse_template(text).render_bounded(values) == text.format(**values)


def test_a_width_given_by_a_value_is_refused_naming_the_field_and_where_it_is():
    template = parse_template("Hello\n{x:>{w}}")

    with pytest.raises(RenderLimitError) as refused:
        template.render_bounded({"x": "a", "w": 999_999_999})

    assert str(refused.value) == (
        "field 'x' at 2:1 asks for a width of 999,999,999 with format spec '>{w}', which the "
        f"values make '>999999999': a width may be at most {WIDTH:,} here"
    )


def test_a_spec_written_past_the_limits_before_them_is_refused_at_render_time():
    with pytest.raises(RenderLimitError, match="precision of 999,999,999"):
        parse_template("{x:,.999999999f}").render_bounded({"x": 1.5})


def test_a_text_longer_than_the_limit_is_refused_before_it_is_built():
    template = parse_template("{x}" * 100)
    limits = InputLimits(rendered_length=10_000)

    with pytest.raises(RenderLimitError) as refused:
        template.render_bounded({"x": "y" * 1000}, limits)

    assert "longer than 10,000 characters" in str(refused.value)
    assert "at field 'x' at 1:31" in str(refused.value)


def test_other_failures_raise_what_render_raises():
    template = parse_template("{a} {b.c}")

    with pytest.raises(MissingVariablesError):
        template.render_bounded({"a": 1})
    with pytest.raises(FieldLookupError, match="no key 'c'"):
        template.render_bounded({"a": 1, "b": {"d": 2}})


def test_a_gigabyte_wide_field_is_refused_within_a_small_memory_limit():
    child = run_limited(
        """
        from registry_ui.core.template import RenderLimitError, parse_template
        outcome = []
        for text, values in [
            ("{x:>999999999}", {"x": 1}),
            ("{x:,.999999999f}", {"x": 1.5}),
            ("{x:>{w}}", {"x": "a", "w": 999999999}),
        ]:
            try:
                outcome.append(len(parse_template(text).render_bounded(values)))
            except RenderLimitError as error:
                outcome.append(str(error))
        print(json.dumps(outcome))
        """,
        memory_mb=300,
    )

    assert not child.ran_out, child.stderr
    assert [message.split(" asks for ")[1][:20] for message in child.result] == [
        "a width of 999,999,9",
        "a precision of 999,9",
        "a width of 999,999,9",
    ]
