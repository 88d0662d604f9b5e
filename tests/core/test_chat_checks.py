"""Test cases on chat templates: checks on single messages, and a sample answer checked as
JSON against the response format."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_ui.core.checks import (
    TestCaseError,
    parse_cases,
    registration_problems,
    run_cases,
    run_version_cases,
)
from registry_ui.core.limits import InputLimits
from registry_ui.core.messages import messages_text, normalize_extra
from registry_ui.core.template_files import load_template_file

SCHEMA = {
    "type": "object",
    "properties": {
        "hook": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["hook"],
}
EXTRA = normalize_extra(
    [
        {"role": "system", "content": "You write for {persona}. Answer in JSON."},
        {"role": "user", "content": "Write a hook about {topic}."},
        {"role": "assistant", "content": '{{"hook": "Stop scrolling"}}'},
        {"role": "user", "content": "Another one about {topic}, shorter."},
    ],
    {"model_name": "gpt-4o", "temperature": 0.3},
    SCHEMA,
)
TEXT = messages_text(EXTRA["messages"])
VALUES = {"persona": "founders", "topic": "pricing"}


def run_one(**case):
    [result] = run_cases(TEXT, parse_cases([{"name": "c", "values": VALUES, **case}]), extra=EXTRA)
    return result


def failures(result) -> list[str]:
    return [str(failure) for failure in result.failures]


# -- checks on single messages ----------------------------------------------------------------


def test_a_check_on_one_message_sees_only_that_message():
    result = run_one(
        messages=[
            {"message": 1, "contains": "founders", "not_contains": "pricing"},
            {"message": 2, "role": "user", "expected": "Write a hook about pricing."},
        ]
    )

    assert failures(result) == []
    assert result.passed


def test_a_failing_message_check_names_the_message_and_its_role():
    result = run_one(
        messages=[
            {"message": 2, "contains": "founders"},
            {"message": 1, "max_length": 10},
        ]
    )

    assert failures(result) == [
        "message 2 (user) contains 'founders': not found in the rendered text",
        "message 1 (system) at most 10 characters: is 39 characters long, 29 over",
    ]


def test_a_role_alone_checks_every_message_with_that_role():
    result = run_one(messages=[{"role": "user", "contains": {"regex": "^Write"}}])

    assert failures(result) == [
        "message 4 (user) matches regular expression '^Write': not found in the rendered text"
    ]


def test_the_whole_text_and_the_messages_are_checked_in_one_case():
    result = run_one(
        contains="[assistant]", messages=[{"role": "assistant", "no_leftover_braces": True}]
    )

    assert failures(result) == [
        "message 3 (assistant) no '{' or '}' left over: '{' at character 1: "
        '\'{"hook": "Stop scroll\'...'
    ]


def test_a_message_that_is_not_there_fails_at_run_saying_what_the_template_has():
    result = run_one(
        messages=[
            {"message": 7, "contains": "x"},
            {"message": 1, "role": "user", "contains": "x"},
            {"role": "tool", "contains": "x"},
        ]
    )

    assert failures(result) == [
        "message 7 can be checked: there is no message 7: the template has 4 message(s); "
        "number them from 1",
        "message 1 (user) can be checked: message 1 is a system message, not user",
        "every tool message can be checked: no message has the role 'tool'; its messages are "
        "system, user, assistant",
    ]


def test_message_checks_on_a_text_template_fail_instead_of_passing_unseen():
    [result] = run_cases(
        "Hi {persona}",
        parse_cases(
            [{"name": "c", "values": VALUES, "messages": [{"role": "user", "contains": "x"}]}]
        ),
        extra={},
    )

    assert failures(result) == [
        "every user message can be checked: the template is a text, not chat messages"
    ]


# -- the sample answer against the response format ----------------------------------------------


def test_a_sample_output_matching_the_response_format_passes():
    assert run_one(sample_output='{"hook": "Stop", "tags": ["saas"]}').passed


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            '{"hook": "Stop",\n "tags": ["saas",]}',
            "not JSON, at line 2, column 18: Expecting value",
        ),
        (
            '{"tags": ["saas", 3]}',
            "$: missing required field 'hook'; $.tags[1]: expected string, found a number",
        ),
        ("[1]", "$: expected object, found a list"),
        (
            "[" * 70 + "]" * 70,
            "not JSON, at line 1, column 65: nested more than 64 levels deep; at most 64 are "
            "accepted",
        ),
    ],
)
def test_a_sample_output_that_is_not_json_or_misses_the_format_says_where(sample, message):
    assert failures(run_one(sample_output=sample)) == [
        f"sample_output is JSON matching the response format: {message}"
    ]


def test_a_long_sample_output_is_not_parsed_past_the_runs_budget():
    limits = InputLimits(check_steps=100)
    [result] = run_cases(
        TEXT,
        parse_cases(
            [{"name": "c", "values": VALUES, "sample_output": '{"hook": "' + "a" * 500 + '"}'}]
        ),
        limits,
        extra=EXTRA,
    )

    assert not result.passed
    assert result.failures[-1].message.startswith("not run: it needs up to")


# -- reading and registering cases ------------------------------------------------------------


def test_message_checks_and_sample_outputs_round_trip_through_their_stored_form():
    data = [
        {
            "name": "c",
            "values": VALUES,
            "contains": ["pricing"],
            "messages": [
                {"message": 1, "role": "system", "contains": ["founders", {"regex": "JSON"}]},
                {"role": "user", "max_length": 80},
            ],
            "sample_output": '{"hook": "Stop"}',
        }
    ]

    [case] = parse_cases(data, EXTRA)

    assert [case.to_data()] == data
    assert parse_cases([case.to_data()]) == [case]


def test_every_problem_in_a_message_check_is_reported_with_where_it_is():
    with pytest.raises(TestCaseError) as raised:
        parse_cases(
            [
                {
                    "name": "c",
                    "messages": [
                        {"message": 0, "contians": "x", "max_length": 0},
                        {"role": "boss", "contains": "x"},
                        {"contains": "x"},
                        {"message": 2},
                        "system",
                    ],
                    "sample_output": {"hook": "x"},
                },
                {"name": "d", "messages": []},
            ]
        )

    assert [(str(p), p.path) for p in raised.value.problems] == [
        (
            "test case 'c': unknown key 'contians' (did you mean 'contains'?): messages[0] has "
            "the keys message, role, max_length, contains, not_contains, no_leftover_braces, "
            "expected",
            (0, "messages", 0, "contians"),
        ),
        (
            "test case 'c': messages[0].message must be a message's number, from 1; found the "
            "number 0",
            (0, "messages", 0, "message"),
        ),
        (
            "test case 'c': messages[0].max_length must be a whole number of characters, at "
            "least 1, e.g. max_length: 500; found the number 0",
            (0, "messages", 0, "max_length"),
        ),
        (
            "test case 'c': messages[1].role must be one of system, developer, user, "
            "assistant, tool; found the text 'boss'",
            (0, "messages", 1, "role"),
        ),
        (
            "test case 'c': messages[2] names no message: give message: N (numbered from 1) "
            "and/or role: system, user...",
            (0, "messages", 2),
        ),
        (
            "test case 'c': messages[3] checks nothing: give it one of max_length, contains, "
            "not_contains, no_leftover_braces, expected",
            (0, "messages", 3),
        ),
        (
            "test case 'c': messages[4] must be a mapping with message: or role: and what to "
            "check; found the text 'system'",
            (0, "messages", 4),
        ),
        (
            "test case 'c': sample_output must be an answer as a model returns it: JSON "
            'written as text, e.g. sample_output: \'{"hook": "Hi"}\'; found a mapping',
            (0, "sample_output"),
        ),
        (
            "test case 'd': messages must be a list of checks on single messages, e.g. "
            "[{role: system, contains: 'You are'}]; found an empty list",
            (1, "messages"),
        ),
    ]


def test_registration_refuses_cases_that_point_at_what_the_version_lacks():
    metadata = {
        "test_cases": [
            {"name": "gone", "messages": [{"message": 5, "contains": "x"}]},
            {"name": "swapped", "messages": [{"message": 2, "role": "system", "contains": "x"}]},
            {"name": "json", "sample_output": '{"hook": "x"}'},
        ]
    }
    no_format = {"messages": EXTRA["messages"]}

    assert registration_problems(metadata, None, no_format) == [
        "test_cases: test case 'gone': messages[0]: there is no message 5: the template has 4 "
        "message(s); number them from 1",
        "test_cases: test case 'swapped': messages[0]: message 2 is a user message, not system",
        "test_cases: test case 'json': sample_output is checked against the template's "
        "response_format, and this version has none: add a response_format (a JSON schema), "
        "or remove sample_output",
    ]
    assert registration_problems(metadata, None, {}) == [
        "test_cases: test case 'gone': messages: checks on single messages need a chat "
        "template, and this one is a text: check the text with contains, max_length... at the "
        "case's top level",
        "test_cases: test case 'swapped': messages: checks on single messages need a chat "
        "template, and this one is a text: check the text with contains, max_length... at the "
        "case's top level",
        "test_cases: test case 'json': sample_output is checked against the template's "
        "response_format, and this version has none: add a response_format (a JSON schema), "
        "or remove sample_output",
    ]


def test_a_version_s_cases_run_with_its_messages_and_response_format():
    metadata = {
        "test_cases": [
            {"name": "system", "values": VALUES, "messages": [{"message": 1, "contains": "x"}]},
            {"name": "answer", "values": VALUES, "sample_output": '{"hook": 1}'},
        ]
    }

    results = run_version_cases(TEXT, metadata, extra=EXTRA)

    assert [(r.name, failures(r)) for r in results] == [
        ("system", ["message 1 (system) contains 'x': not found in the rendered text"]),
        (
            "answer",
            [
                "sample_output is JSON matching the response format: $.hook: expected string, "
                "found a number"
            ],
        ),
    ]


CHAT_FILE = """\
name: persona/hook-chat
version: 1.0.0
template:
  - role: system
    content: You write for {persona}.
  - role: user
    content: Write a hook about {topic}.
response_format:
  type: object
  properties:
    hook: {type: string}
tests:
  - name: asks for a hook
    values: {persona: founders, topic: pricing}
    messages:
      - role: user
        contains: hook
      - message: 3
        contains: x
    sample_output: '{"hook": "Stop"}'
"""


def test_a_template_file_points_at_a_message_check_on_a_message_that_is_not_there(
    tmp_path: Path,
):
    path = tmp_path / "t.yaml"
    path.write_text(CHAT_FILE, encoding="utf-8")

    _, problems = load_template_file(path)

    assert [(p.line, p.column, p.message) for p in problems] == [
        (
            18,
            9,
            "tests: test case 'asks for a hook': messages[1]: there is no message 3: the "
            "template has 2 message(s); number them from 1",
        )
    ]


def test_a_template_file_s_chat_cases_pass_when_what_they_name_is_there(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_text(CHAT_FILE.replace("message: 3", "message: 2"), encoding="utf-8")

    [spec], problems = load_template_file(path)
    [result] = run_version_cases(spec.template, spec.version_metadata, extra=spec.extra)

    assert problems == []
    assert (result.passed, failures(result)) == (
        False,
        ["message 2 (user) contains 'x': not found in the rendered text"],
    )
