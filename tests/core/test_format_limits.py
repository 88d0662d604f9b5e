"""Format specs cannot make the server build gigabytes (issue 16, High 1).

The memory-bound tests run the real code in a child process whose address space is capped
(resource.setrlimit): before the limits, each of them needed more than the cap (the child
died with MemoryError); now each is refused before anything is allocated.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from registry_ui.core.limits import MAX_FORMAT_PRECISION, MAX_FORMAT_WIDTH
from registry_ui.core.template import (
    TemplateRenderError,
    TemplateValidationError,
    parse_template,
    validate_template,
)

CAP_BYTES = 600 * 1024 * 1024  # far above an import of the core, far below a gigabyte


def run_capped(code: str) -> subprocess.CompletedProcess:
    program = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({CAP_BYTES}, {CAP_BYTES}))
        from registry_ui.core.template import TemplateRenderError, parse_template
        """
    ) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Hi {x:>{w}}", {"x": "a", "w": 999_999_999}),  # the viewer chooses the width
        ("Hi {x:,.{p}f}", {"x": 1.5, "p": 999_999_999}),  # and the precision
    ],
)
def test_a_nested_spec_cannot_make_a_render_allocate_a_gigabyte(text, values):
    result = run_capped(
        f"""
        try:
            parse_template({text!r}).render({values!r})
        except TemplateRenderError as error:
            print("refused:", error)
        """
    )

    assert result.returncode == 0, result.stderr[-500:]
    assert "refused: not rendered: format" in result.stdout


def test_a_template_registered_before_the_limits_is_refused_at_render_too():
    # parse_template refuses it now; a ParsedTemplate built around it (an old version read
    # from MLflow goes through the same render) must not build the text either.
    result = run_capped(
        """
        from registry_ui.core.template import ParsedTemplate, _scan
        text = "{x:>999999999}"
        scanner = _scan("{x:>9}")
        import dataclasses
        field = dataclasses.replace(scanner.fields[0], format_spec=">999999999")
        parsed = ParsedTemplate(text, (field,), ("x",))
        try:
            parsed.render({"x": "a"})
        except TemplateRenderError as error:
            print("refused:", error)
        """
    )

    assert result.returncode == 0, result.stderr[-500:]
    assert "refused:" in result.stdout


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("Hello {x:>999999999}", "1:10", "format width 999999999 is too large"),
        ("Hello\n  {x:,.999999999f}", "2:6", "format precision 999999999 is too large"),
    ],
)
def test_validation_names_the_spec_its_line_and_column_and_the_limit(text, where, what):
    [error] = validate_template(text)

    assert what in error.message
    assert f"(at {where})" in error.message
    with pytest.raises(TemplateValidationError):
        parse_template(text)


def test_specs_within_the_limits_render_as_str_format_does():
    text = f"{{a:>{MAX_FORMAT_WIDTH}}}|{{b:.{MAX_FORMAT_PRECISION}f}}|{{c:%Y}}|{{d:>{{w}}}}"
    values = {"a": "x", "b": 0.5, "c": __import__("datetime").date(2026, 12, 4), "d": 7, "w": 4}

    assert parse_template(text).render(values) == text.format(**values)


def test_many_wide_fields_together_stop_at_the_render_limit():
    text = "{x:>1000}" * 2000  # 18,000 characters of template, 2 million of output

    with pytest.raises(TemplateRenderError, match="most a render may produce"):
        parse_template(text).render({"x": "a"})
