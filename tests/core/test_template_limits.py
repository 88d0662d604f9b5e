"""The bounded render (issue 16, High 1): every render the server does is built field by
field and refused before any field's width or precision, or the whole text, passes the
limits, whatever the template's specs: ``{x:>{w}}`` with a value, and ``{x}`` many times over a
long value alike. (Validation of specs written in the template: tests/core/test_format_limits.py.)
"""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from registry_ui.core.limits import DEFAULT_LIMITS, InputLimits
from registry_ui.core.template import (
    FieldLookupError,
    MissingVariablesError,
    ParsedTemplate,
    RenderLimitError,
    _scan,
    parse_template,
)
from tests.support.limited import run_limited

WIDTH = DEFAULT_LIMITS.format_width


def registered_before_the_limits(text: str, spec: str) -> ParsedTemplate:
    """A version whose spec parse_template now refuses, as an old version is still shown."""
    [field] = _scan("{x:>9}").fields
    return ParsedTemplate(text, (dataclasses.replace(field, format_spec=spec),), ("x",))


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


def test_a_spec_registered_before_the_limits_is_refused_at_render_time():
    template = registered_before_the_limits("{x:,.999999999f}", ",.999999999f")

    with pytest.raises(RenderLimitError, match="precision of 999,999,999"):
        template.render_bounded({"x": 1.5})


def test_digits_in_any_script_and_date_widths_count_as_str_format_and_strftime_read_them():
    with pytest.raises(RenderLimitError, match="width of 99,999"):
        parse_template("{x:>{w}}").render_bounded({"x": 1, "w": "٩٩٩٩٩"})
    with pytest.raises(RenderLimitError, match="width of 999,999"):
        parse_template("{d:{f}}").render_bounded({"d": datetime.date(2024, 1, 1), "f": "%0999999Y"})
    assert (
        parse_template("{d:{f}}").render_bounded(
            {"d": datetime.date(2024, 1, 1), "f": "%d.%m.2024"}
        )
        == "01.01.2024"
    )


def test_a_text_longer_than_the_limit_is_refused_before_it_is_built_whatever_the_specs():
    template = parse_template("{x}" * 100)  # no width, no precision: only the values count
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


def test_gigabytes_of_output_are_refused_within_a_small_memory_limit():
    child = run_limited(
        """
        import dataclasses
        from registry_ui.core.template import (
            ParsedTemplate, RenderLimitError, _scan, parse_template
        )
        [field] = _scan("{x:>9}").fields
        wide = dataclasses.replace(field, format_spec=">999999999")
        old = ParsedTemplate("{x:>999999999}", (wide,), ("x",))
        outcome = []
        for template, values in [
            (old, {"x": 1}),
            (parse_template("{x:>{w}}"), {"x": "a", "w": 999999999}),
            (parse_template("{x}" * 30000), {"x": "y" * 10000}),  # 300 million characters
        ]:
            try:
                outcome.append(len(template.render_bounded(values)))
            except RenderLimitError as error:
                outcome.append(str(error))
        print(json.dumps(outcome))
        """,
        memory_mb=300,
    )

    assert not child.ran_out, child.stderr
    width, chosen, many = child.result
    assert "asks for a width of 999,999,999" in width
    assert "asks for a width of 999,999,999" in chosen
    assert "the rendered text would be longer than 1,000,000 characters" in many
