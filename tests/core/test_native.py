"""Native prompts' rules: MLflow's formatting reproduced, conversion, derived versions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_ui.core.native import (
    NATIVE_VARIABLE,
    NativeVersion,
    derive_semvers,
    format_native,
    is_jinja,
    messages_to_native,
    native_changes,
    native_variables,
    to_native,
)
from registry_ui.core.semver import Bump
from registry_ui.core.template import MissingVariablesError, parse_template


def v(number, template, **kwargs):
    return NativeVersion(name="p", number=number, template=template, **kwargs)


def test_the_variable_pattern_is_mlflows_own():
    from mlflow.prompt.constants import PROMPT_TEMPLATE_VARIABLE_PATTERN

    assert NATIVE_VARIABLE.pattern == PROMPT_TEMPLATE_VARIABLE_PATTERN.pattern


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["Hi ", "{{ name }}", "{{age}}", " {", "}", "\\", "\n"]), max_size=8),
    st.text(max_size=12).filter(lambda t: "{{" not in t),
    st.integers(),
)
def test_format_native_renders_as_mlflows_prompt_version(pieces, name, age):
    from mlflow.entities.model_registry.prompt_version import PromptVersion

    text = "".join(pieces) or "x"
    values = {"name": name, "age": age}
    assert format_native(text, values) == PromptVersion("p", 1, text).format(**values)


def test_format_native_refuses_missing_variables_and_formats_each_message():
    with pytest.raises(MissingVariablesError, match="age"):
        format_native("{{ name }} {{ age }}", {"name": "x"})
    chat = ({"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "Hi"})
    assert format_native(chat, {"tone": "brief"}) == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
    ]
    assert native_variables(chat) == ["tone"]


def test_jinja_is_detected_as_mlflow_does():
    assert is_jinja("{% if x %}{{ x }}{% endif %}")
    assert not is_jinja("{{ x }} %}")
    assert is_jinja([{"role": "user", "content": "{% for a in b %}{% endfor %}"}])


@pytest.mark.parametrize(
    ("ours", "native"),
    [
        ("Hello {name}!", "Hello {{name}}!"),
        ("{a}{b}", "{{a}}{{b}}"),
        ('JSON: {{"k": 1}} for {name}', 'JSON: {"k": 1} for {{name}}'),
        ("no fields", "no fields"),
        # MLflow's pattern finds {{x}} inside {{{x}}}, leaving the outer braces as text.
        ("{{{x}}}", "{{{x}}}"),
    ],
)
def test_to_native_converts_single_braces(ours, native):
    result = to_native(ours)
    assert result.publishable and result.text == native


@pytest.mark.parametrize(
    ("ours", "reason"),
    [
        ("{price:.2f}", "line 1, column 1: {price:.2f} has a format spec ('.2f')"),
        ("x {name!r}", "line 1, column 3: {name!r} has a conversion (!r)"),
        ("{items[0]}", "line 1, column 1: {items[0]} indexes a value"),
        ("{user.name}", "line 1, column 1: {user.name} reads an attribute"),
        ("{{{{x}}}}", "literal braces next to or around variables would be read by MLflow"),
        ("{{{{ y }}}} {x}", "would be read by MLflow as the variable(s) {{y}}"),
        ("{{% if %}} {x}", "Jinja2"),
        ("{naïve}", "ASCII letters"),
    ],
)
def test_to_native_refuses_what_the_native_format_cannot_express(ours, reason):
    result = to_native(ours)
    assert not result.publishable
    assert any(reason in r for r in result.reasons), result.reasons


def test_messages_to_native_names_the_message_refused():
    converted, reasons = messages_to_native(
        [{"role": "system", "content": "{a}"}, {"role": "user", "content": "{b:>3}"}]
    )
    assert converted is None
    assert reasons[0].startswith("message 2 (user): line 1, column 1: {b:>3} has a format spec")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["{a}", "{b}", "{{", "}}", "{{a}}", "%}", "{%"]),
            st.text(alphabet="xy {}\n", max_size=4),
        ),
        max_size=8,
    ),
    st.text(max_size=8).filter(lambda t: "{{" not in t),
    st.text(max_size=8).filter(lambda t: "{{" not in t),
)
def test_a_converted_template_renders_as_the_original(pieces, a, b):
    text = "".join(pieces)
    try:
        parsed = parse_template(text)
    except ValueError:
        return
    result = to_native(text)
    if not result.publishable:
        return
    values = {"a": a, "b": b}
    wanted = {k: values.get(k, a + b) for k in parsed.variables}
    assert format_native(result.text, wanted) == parsed.render(wanted)


def test_native_changes_follow_the_variable_rules():
    assert native_changes(v(1, "{{a}} {{b}}"), v(2, "{{a}}")) == [
        (Bump.MAJOR, "removes variable 'b'")
    ]
    assert native_changes(v(1, "{{a}}"), v(2, "{{a}} {{c}}")) == [(Bump.MINOR, "adds variable 'c'")]
    assert native_changes(v(1, "{{a}}"), v(2, "{{ a }}!")) == [
        (Bump.PATCH, "changes the template text")
    ]
    schema = {"type": "object", "properties": {"x": {}}}
    assert native_changes(v(1, "a", response_format=schema), v(2, "a"))[0][0] is Bump.MAJOR


def test_derive_semvers_from_the_diffs_and_keeps_a_greater_tag():
    versions = [
        v(1, "{{a}}"),
        v(2, "{{a}}!"),
        v(3, "{{a}} {{b}}"),
        v(4, "{{b}}"),
        v(5, "{{b}}?", semver="7.0.0"),
        v(6, "{{b}}!", semver="1.0.0"),  # not greater than 7.0.0: ignored
        v(7, "{{b}} {{c}}", semver="7.0.2"),  # smaller than the diff needs, but kept
    ]
    assert derive_semvers(versions) == {
        1: "1.0.0",
        2: "1.0.1",
        3: "1.1.0",
        4: "2.0.0",
        5: "7.0.0",
        6: "7.0.1",
        7: "7.0.2",
    }
