"""Chat templates, model configuration and response format: pure rules."""

from __future__ import annotations

import pytest

from registry_ui.core.diff import compare_templates, messages_diff
from registry_ui.core.messages import (
    ContentError,
    extra_changes,
    message_problems,
    messages_text,
    model_config_problems,
    normalize_extra,
    render_messages,
    response_format_problems,
    schema_errors,
    schema_fields,
)
from registry_ui.core.records import content_hash
from registry_ui.core.semver import Bump, VersionBumpError, check_bump, required_bump

CHAT = [
    {"role": "system", "content": "You write for {persona}."},
    {"role": "user", "content": "Write a hook about {topic}."},
]
SCHEMA = {
    "type": "object",
    "properties": {
        "hook": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["hook"],
}


def test_each_message_problem_names_the_message_and_its_line_and_column():
    problems = message_problems(
        [
            {"role": "system", "content": "fine {a}"},
            {"role": "user", "content": "line one\nbroken {b"},
            {"role": "boss", "content": "x"},
            {"role": "user"},
        ]
    )
    assert problems[0].startswith("message 2 (user), line 2, column 8: ")
    assert (
        "message 3: role 'boss' is not one of system, developer, user, assistant, tool" in problems
    )
    assert "message 4 (user): content must be text, found nothing (null)" in problems
    assert len(problems) == 3


def test_messages_must_be_a_non_empty_list_of_role_and_content():
    assert message_problems("text") == [
        "messages must be a list of {role, content} mappings, found text"
    ]
    assert message_problems([]) == ["messages is empty: a chat template needs at least one message"]
    assert (
        "unknown key(s) 'name'"
        in message_problems([{"role": "user", "content": "x", "name": 1}])[0]
    )


def test_a_chat_template_as_text_keeps_every_variable_and_renders_like_each_message():
    text = messages_text(CHAT)
    assert text == "[system]\nYou write for {persona}.\n\n[user]\nWrite a hook about {topic}."
    assert render_messages(CHAT, {"persona": "founders", "topic": "AI"}) == [
        {"role": "system", "content": "You write for founders."},
        {"role": "user", "content": "Write a hook about AI."},
    ]


def test_render_messages_refuses_missing_values_by_name():
    with pytest.raises(ValueError, match="topic"):
        render_messages(CHAT, {"persona": "x"})


def test_model_config_types_and_ranges_are_checked_and_unknown_keys_are_kept():
    assert model_config_problems({"model_name": "gpt-4o", "temperature": 0.3, "seed": 4}) == []
    problems = model_config_problems({"temperature": 3, "max_tokens": "many", "top_p": True})
    assert "model_config.temperature is 3: use 0 to 2" in problems
    assert "model_config.max_tokens must be a whole number, found text" in problems
    assert "model_config.top_p must be a number, found true/false" in problems
    assert model_config_problems([1]) == [
        "model_config must be a mapping of settings, found a list"
    ]


def test_response_format_must_be_a_schema():
    assert response_format_problems(SCHEMA) == []
    assert response_format_problems({}) == [
        "response_format is empty: write a JSON schema, e.g. type: object"
    ]
    assert response_format_problems({"type": "thing"}) == [
        "response_format.type 'thing' is not a JSON schema type"
    ]


def test_normalize_extra_keeps_only_what_is_present_and_lists_every_problem():
    assert normalize_extra() == {}
    assert normalize_extra(model_config={}) == {}
    extra = normalize_extra(CHAT, {"temperature": 0.2}, SCHEMA)
    assert set(extra) == {"messages", "model_config", "response_format"}
    with pytest.raises(ContentError) as caught:
        normalize_extra([{"role": "user", "content": "{"}], {"temperature": -1}, "no")
    assert len(caught.value.problems) == 3


def test_the_hash_of_a_text_template_is_unchanged_and_extras_change_it():
    # The value every version registered before chat templates existed was hashed with.
    import hashlib
    import json

    legacy = hashlib.sha256(
        json.dumps(
            {"template": "Hi {name}", "metadata": {"author": "a"}},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    assert content_hash("Hi {name}", {"author": "a"}) == legacy
    assert content_hash("Hi {name}", {"author": "a"}, {}) == legacy
    with_config = content_hash("Hi {name}", {"author": "a"}, {"model_config": {"temperature": 0.1}})
    assert with_config != legacy
    assert with_config != content_hash(
        "Hi {name}", {"author": "a"}, {"model_config": {"temperature": 0.2}}
    )


@pytest.mark.parametrize(
    ("old", "new", "bump", "reason"),
    [
        ({}, {"response_format": SCHEMA}, Bump.MINOR, "adds a response format"),
        ({"response_format": SCHEMA}, {}, Bump.MAJOR, "removes the response format"),
        (
            {"response_format": SCHEMA},
            {"response_format": {**SCHEMA, "properties": {"hook": {"type": "string"}}}},
            Bump.MAJOR,
            "removes field 'tags' from the response format",
        ),
        (
            {"response_format": SCHEMA},
            {"response_format": {**SCHEMA, "required": ["hook", "tags"]}},
            Bump.MINOR,
            "changes the response format",
        ),
        (
            {"model_config": {"temperature": 0.2}},
            {"model_config": {"temperature": 0.7, "max_tokens": 50}},
            Bump.PATCH,
            "changes the model configuration (max_tokens 50 added, temperature 0.2 \u2192 0.7)",
        ),
    ],
)
def test_required_bumps_of_model_configuration_and_response_format(old, new, bump, reason):
    requirement = required_bump("Hi {a}", "Hi {a}", old_extra=old, new_extra=new)
    assert requirement.bump is bump
    assert reason in requirement.reasons
    assert extra_changes(old, old) == []


def test_check_bump_refuses_a_patch_that_removes_a_response_field():
    old = {"response_format": SCHEMA}
    new = {"response_format": {"type": "object", "properties": {"hook": {"type": "string"}}}}
    with pytest.raises(VersionBumpError, match=r"needs 2\.0\.0 or later"):
        check_bump("1.0.0", "x", "1.0.1", "x", old_extra=old, new_extra=new)
    assert check_bump("1.0.0", "x", "2.0.0", "x", old_extra=old, new_extra=new).bump is Bump.MAJOR


def test_schema_fields_walk_nested_properties_and_items():
    assert list(schema_fields(SCHEMA)) == ["hook", "tags"]
    nested = {
        "properties": {"a": {"properties": {"b": {}}}, "l": {"items": {"properties": {"u": {}}}}}
    }
    assert list(schema_fields(nested)) == ["a", "a.b", "l", "l[].u"]


def test_schema_errors_say_where_an_answer_does_not_match():
    assert schema_errors({"hook": "x", "tags": ["a"]}, SCHEMA) == []
    assert schema_errors({"tags": [1]}, SCHEMA) == [
        "$: missing required field 'hook'",
        "$.tags[0]: expected string, found a number",
    ]
    assert schema_errors([], SCHEMA) == ["$: expected object, found a list"]


def test_the_diff_goes_message_by_message_and_shows_configuration_side_by_side():
    new_chat = [CHAT[0], {"role": "user", "content": "Write two hooks about {topic}."}, CHAT[1]]
    rows = messages_diff(CHAT, new_chat)
    assert [r["status"] for r in rows] == ["same", "changed", "added"]
    result = compare_templates(
        messages_text(CHAT),
        messages_text(new_chat),
        old_version="1.0.0",
        new_version="1.0.1",
        old_extra={"messages": CHAT, "model_config": {"temperature": 0.2}},
        new_extra={"messages": new_chat, "model_config": {"temperature": 0.4}},
    )
    assert [r["key"] for r in result["model_config_diff"] if r["changed"]] == ["temperature"]
    assert result["bump"]["required"] == "patch"
    assert result["bump"]["ok"] is True
    assert "messages_diff" not in compare_templates("a", "b")
