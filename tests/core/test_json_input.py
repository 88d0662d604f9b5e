"""JSON from outside: parsed as json.loads does, refused past the nesting limit before any
recursion, with the limit and where it was passed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.json_input import JsonNestingError, deepest_nesting, load_json
from registry_ui.core.limits import MAX_JSON_DEPTH

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_it_reads_what_json_loads_reads(value):
    text = json.dumps(value)

    assert load_json(text) == json.loads(text)
    assert load_json(text.encode("utf-16")) == json.loads(text.encode("utf-16"))


def test_it_accepts_nesting_up_to_the_limit():
    text = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH

    assert load_json(text) == json.loads(text)


def test_it_refuses_nesting_past_the_limit_naming_it_and_where():
    text = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"

    with pytest.raises(JsonNestingError) as refused:
        load_json(text)

    assert refused.value.limit == MAX_JSON_DEPTH
    assert (refused.value.lineno, refused.value.colno) == (1, 6 + MAX_JSON_DEPTH)
    assert f"at most {MAX_JSON_DEPTH} levels are accepted" in str(refused.value)
    assert isinstance(refused.value, json.JSONDecodeError)  # what callers already catch


def test_a_deep_body_that_json_loads_cannot_parse_is_refused_instead():
    text = "[" * 100_000 + "]" * 100_000

    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(JsonNestingError):
        load_json(text)


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"text": "[" * 1000 + '\\"{' * 100, "list": [["ok"]]})

    assert deepest_nesting(text, 3) is None
    assert load_json(text)["list"] == [["ok"]]


def test_an_unclosed_string_full_of_escapes_is_scanned_once():
    text = '["' + '\\"' * 200_000

    assert deepest_nesting(text, 1) is None
    with pytest.raises(json.JSONDecodeError):
        load_json(text)


def test_a_smaller_limit_can_be_given():
    with pytest.raises(JsonNestingError, match="at most 2 levels"):
        load_json("[[[1]]]", max_depth=2)
