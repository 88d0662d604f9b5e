"""Test cases cannot make a check run forever: regular expressions run on RE2 (linear time),
patterns it cannot run are refused when the cases are read, saying why and where, and a
whole run spends a budget of steps counted as it goes, then stops by itself."""

from __future__ import annotations

import pytest

from registry_ui.core.checks import (
    RUNS_IN_BUDGET,
    TestCaseError,
    parse_cases,
    run_cases,
)
from registry_ui.core.limits import InputLimits
from tests.support.limited import run_limited

CATASTROPHIC = "(a+)+$"  # exponential on a run of a's that does not end the text, in Python's re


def test_a_catastrophic_pattern_runs_at_once_on_a_text_that_would_make_re_backtrack():
    child = run_limited(
        """
        from registry_ui.core.checks import parse_cases, run_cases
        cases = parse_cases([
            {"name": "trap", "values": {"x": "a" * 40 + "!"}, "contains": [{"regex": "(a+)+$"}]},
        ])
        [result] = run_cases("{x}", cases)
        print(json.dumps([result.passed, [f.message for f in result.failures]]))
        """,
        memory_mb=300,
        cpu_seconds=10,
    )

    assert not child.ran_out, child.stderr[-2000:]
    assert child.result == [False, ["not found in the rendered text"]]


def test_it_finds_matches_where_they_are_in_characters():
    cases = parse_cases(
        [{"name": "n", "values": {"x": "é🔥 #AI"}, "not_contains": [{"regex": r"#\w+"}]}]
    )

    [result] = run_cases("{x}", cases)

    assert result.failures[0].message == "'#AI' at character 4 matches it"


@pytest.mark.parametrize(
    ("pattern", "position", "said"),
    [
        (r"(a)\1", 3, "backreferences such as \\1 are not offered"),
        (r"(?=a)b", 0, "lookahead and lookbehind such as (?=...) are not offered"),
        (r"(?<!x)y", 0, "lookahead and lookbehind"),
        (r"end\Z", 3, "write \\z for the end of the text"),
        (r"#(\w+", 1, "a '(' is never closed"),
        ("a{2000}", 1, "past 1,000"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_saying_why_and_where(pattern, position, said):
    with pytest.raises(TestCaseError) as refused:
        parse_cases([{"name": "p", "contains": [{"regex": pattern}]}])

    [problem] = refused.value.problems
    assert problem.regex_position == position
    assert f"cannot be used, at position {position}: " in problem.message
    assert said in problem.message


def test_a_run_stops_by_itself_when_its_budget_of_steps_is_spent():
    cases = parse_cases(
        [
            {"name": f"case {n}", "values": {"x": "y" * 1000}, "contains": [{"regex": "y+z"}]}
            for n in range(5)
        ]
    )
    # A render of 1,000 characters and a search over them with a program of a few
    # instructions: a budget of 20,000 steps pays for two cases, not for three.
    limits = InputLimits(check_steps=20_000)

    results = run_cases("{x}", cases, limits)

    assert [r.failures[0].expectation for r in results] == [
        "matches regular expression 'y+z'",
        "matches regular expression 'y+z'",
        "matches regular expression 'y+z'",
        RUNS_IN_BUDGET,
        RUNS_IN_BUDGET,
    ]
    assert results[0].failures[0].message == "not found in the rendered text"
    assert results[2].failures[0].message.startswith("not run: it needs up to ")
    assert (
        results[4]
        .failures[0]
        .message.startswith(
            "not run: it needs up to 3 steps of work and this run has none left of its budget of "
            "20,000"
        )
    )


def test_the_rendered_texts_kept_in_a_run_add_up_to_the_rendered_length_at_most():
    cases = parse_cases([{"name": f"c{n}", "values": {"x": "y" * 4000}} for n in range(3)])

    results = run_cases("{x}", cases, InputLimits(rendered_length=10_000))

    assert [len(r.rendered) for r in results] == [4000, 4000, 2000]
    assert [r.rendered_length for r in results] == [None, None, 4000]
    assert all(r.passed for r in results)
    assert results[2].to_data()["rendered_length"] == 4000
