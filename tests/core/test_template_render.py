"""Rendering: exactly str.format when it works, and a precise error when it does not."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from registry_ui.core.template import (
    FieldFormatError,
    FieldLookupError,
    MissingVariablesError,
    TemplateRenderError,
    parse_template,
    render_template,
)

HOOK = "🔥 {hook_text} - {cta} #trending #{hashtag}"


def test_it_renders_the_design_note_hook():
    content = render_template(
        HOOK,
        hook_text="AI just changed everything",
        cta="See how in comments",
        hashtag="AIRevolution",
    )

    assert content == "🔥 AI just changed everything - See how in comments #trending #AIRevolution"


def test_it_renders_format_specs_indexes_and_dates_as_str_format_does():
    text = "Hello {name}, your balance is ${balance:.2f}; {settings[api][key]} at {when:%Y-%m-%d}"
    values = {
        "name": "Ann",
        "balance": 1234.5678,
        "settings": {"api": {"key": "k-1"}},
        "when": datetime.date(2024, 5, 17),
    }

    assert parse_template(text).render(values) == text.format(**values)
    assert parse_template(text).render(values) == (
        "Hello Ann, your balance is $1234.57; k-1 at 2024-05-17"
    )


def test_it_renders_nested_spec_fields_and_conversions():
    template = parse_template("[{value:{width}.{precision}f}] [{x!r:>6}]")

    assert template.render_kwargs(value=3.14159, width=8, precision=3, x="hi") == (
        "[   3.142] [  'hi']"
    )


def test_it_ignores_values_the_template_does_not_use():
    assert render_template("Hi {name}", name="Ann", unused=object()) == "Hi Ann"


def test_it_accepts_any_mapping_of_values():
    from types import MappingProxyType

    assert parse_template("Hi {name}").render(MappingProxyType({"name": "Ann"})) == "Hi Ann"


def test_it_renders_escaped_braces_and_unicode_text():
    assert render_template("{{ {emoji} }} ✓\n{name}", emoji="🚀", name="Zoë") == "{ 🚀 } ✓\nZoë"


# -- missing values ---------------------------------------------------------------------------


def test_it_lists_every_missing_variable_at_once_in_template_order():
    with pytest.raises(MissingVariablesError) as raised:
        render_template(HOOK, hook_text="AI")

    assert raised.value.missing == ["cta", "hashtag"]
    assert str(raised.value) == "missing values for 2 variables: 'cta', 'hashtag'"


def test_it_counts_variables_used_only_in_a_format_spec_as_missing_too():
    with pytest.raises(MissingVariablesError, match=r"^missing a value for variable 'width'$"):
        render_template("{value:>{width}}", value=1)


def test_a_missing_variable_is_a_render_error_and_a_value_error():
    with pytest.raises(TemplateRenderError):
        render_template("{a}")
    with pytest.raises(ValueError):
        render_template("{a}")


# -- values that do not fit their field -------------------------------------------------------


def test_it_names_the_field_the_spec_and_the_value_that_do_not_fit():
    with pytest.raises(FieldFormatError) as raised:
        render_template("Balance: {balance:.2f}", balance="abc")

    assert raised.value.field == "balance"
    assert raised.value.format_spec == ".2f"
    assert str(raised.value) == (
        "field 'balance' with format spec '.2f' cannot format 'abc' (str): "
        "Unknown format code 'f' for object of type 'str'"
    )


def test_it_shows_a_nested_spec_as_written_and_as_expanded():
    with pytest.raises(FieldFormatError, match=r"'\{w\}d' \(= '5d'\) cannot format 1\.5 \(float\)"):
        render_template("{n:{w}d}", n=1.5, w=5)


def test_it_names_the_conversion_when_the_converted_text_does_not_fit():
    with pytest.raises(FieldFormatError, match=r"^field 'n' with conversion !r .* '5' \(str\)"):
        render_template("{n!r:d}", n=5)


def test_it_blames_the_spec_field_whose_own_value_does_not_fit():
    with pytest.raises(FieldFormatError, match=r"^field 'w'"):
        render_template("{n:{w:d}}", n=1, w="wide")


def test_it_names_the_path_of_an_index_that_does_not_exist():
    with pytest.raises(FieldLookupError) as raised:
        render_template("{config[api][key]}", config={"api": {}})

    assert raised.value.field == "config[api][key]"
    assert str(raised.value) == "field 'config[api][key]': 'config[api]' (dict) has no key 'key'"


def test_it_names_a_list_index_out_of_range():
    with pytest.raises(FieldLookupError, match=r"index 2 is out of range for 'items' \(list\)"):
        render_template("{items[2]}", items=[1])


def test_it_names_an_attribute_an_object_lacks():
    with pytest.raises(FieldLookupError, match=r"'user' \(SimpleNamespace\) has no attribute 'x'"):
        render_template("{user.x}", user=SimpleNamespace(name="Ann"))


def test_it_wraps_an_unexpected_failure_of_a_value_in_a_render_error():
    class Broken:
        def __format__(self, spec):
            raise RuntimeError("boom")

    with pytest.raises(FieldFormatError, match="boom"):
        render_template("{x}", x=Broken())


# -- JSON-like values -------------------------------------------------------------------------


def test_it_reads_keys_of_dict_values_written_as_attributes():
    user = {"name": "Ann", "address": {"city": "Paris"}, "tags": ["a", "b"]}

    content = render_template(
        "{user.name} {user[name]} {user.address.city} {user.tags[1]}", user=user
    )

    assert content == "Ann Ann Paris b"


def test_it_reads_keys_of_dicts_inside_lists():
    assert render_template("{rows[1].name}", rows=[{"name": "a"}, {"name": "b"}]) == "b"


def test_it_formats_a_dict_value_reached_by_attributes_as_the_dict_itself():
    user = {"name": "Ann"}

    content = render_template("{user.name}: {user} {user!r} {user.name!r:>6}", user=user)

    assert content == "Ann: {'name': 'Ann'} {'name': 'Ann'}  'Ann'"


def test_it_names_the_path_of_a_missing_key_read_as_an_attribute():
    with pytest.raises(FieldLookupError) as raised:
        render_template("{user.address.city}", user={"address": {}})

    assert str(raised.value) == (
        "field 'user.address.city': 'user.address' (dict) has no key 'city'"
    )


def test_it_never_exposes_dict_methods_through_attributes():
    with pytest.raises(FieldLookupError, match="has no key 'keys'"):
        render_template("{user.keys}", user={"name": "Ann"})


def test_it_leaves_objects_with_attributes_alone():
    point = SimpleNamespace(x=1, y=2)

    assert render_template("{p.x},{p.y}", p=point) == "1,2"


def test_it_does_not_change_the_callers_values():
    values = {"user": {"name": "Ann"}}

    parse_template("{user.name}").render(values)

    assert type(values["user"]) is dict


# -- private attributes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["{obj.__class__}", "{obj._secret}", "{obj[_secret]}", "{obj.a.__dict__}"]
)
def test_private_names_cannot_even_be_parsed_so_they_are_never_rendered(text):
    with pytest.raises(ValueError, match="private"):
        render_template(text, obj=SimpleNamespace(_secret=1, a=1))


def test_the_json_view_hides_its_own_internals():
    template = parse_template("{user.name}")
    view = template._prepared({"user": {"name": "Ann"}})["user"]

    with pytest.raises(AttributeError, match="private"):
        view.__getattr__("_value")
