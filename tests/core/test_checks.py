"""registry_ui.core.checks: the metadata policy, test cases, running them, regressions."""

from __future__ import annotations

import pytest

from registry_ui import config
from registry_ui.core.checks import (
    TEST_CASES_KEY,
    CaseResult,
    MetadataPolicy,
    TestCase,
    TestCaseError,
    parse_cases,
    registration_problems,
    regressions,
    run_cases,
    run_version_cases,
)
from registry_ui.core.template_files import load_template_file

HOOK = "🔥 {hook_text}\n👉 {cta} #trending #{hashtag}"
VALUES = {"hook_text": "AI just changed everything", "cta": "See how", "hashtag": "AI"}
RENDERED = "🔥 AI just changed everything\n👉 See how #trending #AI"
COMPLETE = {
    "author": "content-team",
    "purpose": "Opening hook",
    "tested_on": "threads",
    "performance_metrics": {"engagement_rate": 0.06},
}


def run_one(template: str = HOOK, **case) -> CaseResult:
    [result] = run_cases(template, parse_cases([{"name": "c", "values": VALUES, **case}]))
    return result


# -- the metadata policy ----------------------------------------------------------------------


def test_the_default_policy_asks_for_the_design_notes_four_keys():
    policy = MetadataPolicy()

    assert [key for key, _ in policy.required] == [
        "author",
        "purpose",
        "tested_on",
        "performance_metrics",
    ]
    assert policy.check(COMPLETE) == []
    assert policy.check({**COMPLETE, "tested_on": ["threads", "linkedin"]}) == []


def test_it_lists_every_missing_key_and_wrong_type_in_one_go():
    problems = MetadataPolicy().problems(
        {"author": "alice", "tested_on": 3, "performance_metrics": {"engagement_rate": "high"}}
    )

    assert problems == [
        "metadata.purpose is missing: the metadata policy requires text here (what the template "
        "does, e.g. purpose: Opening hook for entrepreneur posts)",
        "metadata.tested_on must be text or a list of texts (the platforms it was tested on, "
        "e.g. tested_on: threads); found the number 3",
        "metadata.performance_metrics must be a mapping of metric names to numbers (its "
        "expected metrics, e.g. performance_metrics: {engagement_rate: 0.06}); found a mapping",
    ]


@pytest.mark.parametrize(
    ("key", "value", "found"),
    [
        ("author", "  ", "empty text"),
        ("author", None, None),  # null counts as missing
        ("tested_on", [], "an empty list"),
        ("tested_on", ["threads", 1], "a list"),
        ("performance_metrics", {"engagement_rate": True}, "a mapping"),
        ("performance_metrics", {}, "an empty mapping"),
    ],
)
def test_it_refuses_values_of_the_wrong_kind(key, value, found):
    [problem] = MetadataPolicy().check({**COMPLETE, key: value})

    assert problem.key == key
    if found is None:
        assert problem.message.startswith(f"metadata.{key} is missing")
    else:
        assert problem.message.endswith(f"; found {found}")


@pytest.mark.parametrize(
    ("raw", "required"),
    [
        ("", MetadataPolicy().required),
        ("none", ()),
        ("author:str, owner", (("author", "str"), ("owner", "any"))),
        ('{"author": "str", "score": "number"}', (("author", "str"), ("score", "number"))),
    ],
)
def test_the_policy_is_read_from_text_or_json(raw, required):
    assert MetadataPolicy.parse(raw).required == required


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("author:text", "unknown kind 'text'"),
        ("author:str,author:str", "key 'author' is given twice"),
        ("{author", "not valid JSON"),
        ('{"author": 1}', "write a JSON object of key to kind"),
    ],
)
def test_a_malformed_policy_says_what_is_wrong(raw, message, monkeypatch):
    monkeypatch.setenv("REGISTRY_UI_REQUIRED_METADATA", raw)

    with pytest.raises(config.ConfigurationError, match="REGISTRY_UI_REQUIRED_METADATA") as error:
        config.required_metadata()

    assert message in str(error.value)


def test_registration_problems_list_the_policy_the_cases_and_the_size():
    metadata = {
        "author": "alice",
        TEST_CASES_KEY: [{"name": "a", "contains": {"regex": "#(x"}}],
        "notes": "x" * 100_000,
    }

    problems = registration_problems(metadata, MetadataPolicy())

    assert [p.split(" ", 1)[0] for p in problems] == [
        "metadata.purpose",
        "metadata.tested_on",
        "metadata.performance_metrics",
        "test_cases:",
        "metadata",
    ]
    assert "cannot be used, at position 1" in problems[3]
    assert "MLflow keeps at most 100,000" in problems[4]


def test_a_case_set_too_large_for_mlflow_is_refused_saying_how_much_the_cases_take():
    cases = [{"name": f"case {n}", "expected": "x" * 1000} for n in range(120)]

    [problem] = registration_problems({TEST_CASES_KEY: cases})

    assert "MLflow keeps at most 100,000 in the tag that stores it" in problem
    assert "its 120 test case(s) take" in problem
    assert "shorten their values and expected outputs, or keep fewer cases" in problem


# -- every expectation kind, passing and failing -----------------------------------------------


def test_a_case_without_expectations_passes_when_the_text_renders():
    result = run_one()

    assert (result.passed, result.rendered, result.failures) == (True, RENDERED, ())


def test_a_case_fails_when_the_text_does_not_render():
    [result] = run_cases(HOOK, parse_cases([{"name": "c", "values": {"hook_text": "x"}}]))

    assert (result.passed, result.rendered) == (False, None)
    assert result.error == "missing values for 2 variables: 'cta', 'hashtag'"
    assert str(result.failures[0]) == (
        "renders without error: missing values for 2 variables: 'cta', 'hashtag'"
    )


@pytest.mark.parametrize(
    ("case", "failure"),
    [
        ({"max_length": 52}, None),
        ({"max_length": 51}, "at most 51 characters: is 52 characters long, 1 over"),
        ({"contains": "#trending"}, None),
        ({"contains": ["#trending", "#AI"]}, None),
        ({"contains": "#viral"}, "contains '#viral': not found in the rendered text"),
        ({"contains": {"regex": r"#[A-Z]{2}\b"}}, None),
        (
            {"contains": {"regex": r"#\d+"}},
            "matches regular expression '#\\d+': not found in the rendered text",
        ),
        ({"not_contains": "TODO"}, None),
        ({"not_contains": "See how"}, "does not contain 'See how': found at character 32"),
        ({"not_contains": {"regex": r"\bTODO\b"}}, None),
        (
            {"not_contains": {"regex": r"#\w+ing"}},
            "does not match regular expression '#\\w+ing': '#trending' at character 40 matches it",
        ),
        ({"no_leftover_braces": True}, None),
        ({"expected": RENDERED}, None),
        (
            {"expected": RENDERED + "!"},
            "equals the expected output: stops at character 53, before the expected "
            "...'ee how #trending #AI!'",
        ),
        (
            {"expected": RENDERED.replace("See how", "See why")},
            "equals the expected output: differs at character 36: expected "
            "...'ed everything\\n👉 See why #trending #AI', got "
            "...'ed everything\\n👉 See how #trending #AI'",
        ),
    ],
)
def test_each_expectation_passes_or_says_why_not(case, failure):
    result = run_one(**case)

    assert result.rendered == RENDERED
    assert [str(f) for f in result.failures] == ([failure] if failure else [])
    assert result.passed is (failure is None)


def test_no_leftover_braces_fails_on_a_brace_a_value_brought_in():
    result = run_one(no_leftover_braces=True, values={**VALUES, "cta": "See {link}"})

    assert [str(f) for f in result.failures] == [
        "no '{' or '}' left over: '{' at character 36: "
        "...'ed everything\\n👉 See {link} #trending #AI'"
    ]


def test_a_case_with_several_expectations_reports_every_one_it_misses():
    result = run_one(max_length=10, contains="#viral", not_contains="#AI", no_leftover_braces=True)

    assert [f.expectation for f in result.failures] == [
        "at most 10 characters",
        "contains '#viral'",
        "does not contain '#AI'",
    ]


def test_a_threads_post_over_500_characters_fails_its_limit():
    result = run_one(max_length=500, values={**VALUES, "hook_text": "a" * 480})

    assert result.failures[0].message == "is 506 characters long, 6 over"


# -- reading cases -----------------------------------------------------------------------------


def test_cases_round_trip_through_the_plain_data_they_are_stored_as():
    data = [
        {
            "name": "fits a Threads post",
            "values": VALUES,
            "max_length": 500,
            "contains": ["#trending", {"regex": "#AI$"}],
            "not_contains": ["TODO"],
            "no_leftover_braces": True,
            "expected": RENDERED,
        }
    ]

    [case] = parse_cases(data)

    assert isinstance(case, TestCase)
    assert [case.to_data()] == data
    assert parse_cases([case.to_data()]) == [case]


def test_a_bad_regular_expression_is_refused_with_its_position_and_case():
    with pytest.raises(TestCaseError) as raised:
        parse_cases([{"name": "hashtags", "not_contains": ["TODO", {"regex": "#(\\w+"}]}])

    [problem] = raised.value.problems
    assert str(problem) == (
        "test case 'hashtags': not_contains[1]: regular expression '#(\\w+' cannot be used, "
        "at position 1: a '(' is never closed"
    )
    assert problem.regex_position == 1
    assert problem.path == (0, "not_contains", 1, "regex")


def test_every_problem_in_a_case_set_is_reported():
    with pytest.raises(TestCaseError) as raised:
        parse_cases(
            [
                {"values": {}},
                {"name": "a", "max_lenght": 5, "max_length": 0, "no_leftover_braces": "yes"},
                {"name": "a"},
                {"name": "b", "contains": [""], "expected": 3, "values": [1]},
                "not a case",
            ]
        )

    assert [str(problem) for problem in raised.value.problems] == [
        "test case 1: has no name: give it one, e.g. name: fits a Threads post",
        "test case 'a': unknown key 'max_lenght' (did you mean 'max_length'?): a test case has "
        "the keys name, values, max_length, contains, not_contains, no_leftover_braces, expected, "
        "messages, sample_output",
        "test case 'a': max_length must be a whole number of characters, at least 1, e.g. "
        "max_length: 500; found the number 0",
        "test case 'a': no_leftover_braces must be true or false; found the text 'yes'",
        "test case 'a': the name is used by test case 2 too: give each case its own name",
        "test case 'b': values must be a mapping of variable names to sample values, e.g. "
        "values: {hook_text: Hello}; found a list",
        "test case 'b': contains[0] must be a text, or {regex: PATTERN} for a regular "
        "expression; found empty text",
        "test case 'b': expected must be the exact rendered text; found the number 3",
        "test case 5: must be a mapping with a name; found the text 'not a case'",
    ]


def test_cases_that_cannot_be_read_fail_as_one_result_instead_of_raising():
    [result] = run_version_cases(HOOK, {TEST_CASES_KEY: [{"name": "x", "contains": 3}]})

    assert (result.name, result.passed) == ("(test cases)", False)
    assert "contains must be a text" in result.failures[0].message


# -- regressions -------------------------------------------------------------------------------


def test_regressions_are_the_cases_the_new_version_breaks_that_the_old_one_passed():
    cases = parse_cases(
        [
            {"name": "hashtag", "values": VALUES, "contains": "#trending"},
            {"name": "short", "values": VALUES, "max_length": 20},
            {"name": "renders", "values": VALUES},
        ]
    )
    old = run_cases(HOOK, cases)
    new = run_cases("{hook_text} 👉 {cta} {hashtag}", cases)

    broken = regressions(old, new)

    assert [result.name for result in broken] == ["hashtag"]  # "short" failed before too
    assert broken[0].failures[0].message == "not found in the rendered text"
    assert regressions(new, old) == []


def test_results_survive_their_json_form():
    result = run_one(contains="#viral")

    assert CaseResult.from_data(result.to_data()) == result


# -- cases and the policy in template files ----------------------------------------------------


def write(tmp_path, text: str):
    path = tmp_path / "hook.yaml"
    path.write_text(text, encoding="utf-8")
    return path


FILE = """\
name: persona/hook
version: 1.0.0
template: "Hi {name} #{tag}"
metadata:
  author: alice
  tested_on: 3
tests:
  - name: short
    values: {name: Ada, tag: ai}
    max_length: 500
  - name: hashtag
    values: {name: Ada, tag: ai}
    contains: {regex: '#(\\w+'}
    expeted: Hi Ada #ai
"""


def test_a_template_file_reports_case_and_policy_problems_where_they_are_written(tmp_path):
    path = tmp_path / "hook.yaml"
    path.write_text(
        "name: persona/hook\n"
        "version: 1.0.0\n"
        'template: "Hi {name} #{tag}"\n'
        "metadata:\n"
        "  author: alice\n"
        "  tested_on: 3\n"
        "tests:\n"
        "  - name: short\n"
        "    values: {name: Ada, tag: ai}\n"
        "    max_length: 500\n"
        "  - name: hashtag\n"
        "    contains: {regex: '#(\\w+'}\n"
        "    expeted: Hi Ada #ai\n",
        encoding="utf-8",
    )

    specs, problems = load_template_file(path, policy=MetadataPolicy())

    assert specs == []
    # Where each is written: the metadata key for a missing key, the value for a wrong one,
    # the very character where the regular expression goes wrong, an unknown key itself.
    assert [(p.line, p.column) for p in problems] == [(4, 1), (4, 1), (6, 14), (12, 25), (13, 5)]
    assert [p.message.split(" ", 1)[0] for p in problems] == [
        "metadata.purpose",
        "metadata.performance_metrics",
        "metadata.tested_on",
        "tests:",
        "tests:",
    ]
    assert problems[3].message == (
        "tests: test case 'hashtag': contains: regular expression '#(\\w+' cannot be used, "
        "at position 1: a '(' is never closed"
    )


def test_cases_in_a_template_file_are_registered_in_the_metadata_with_their_positions(tmp_path):
    path = tmp_path / "hook.yaml"
    path.write_text(
        "name: persona/hook\nversion: 1.0.0\ntemplate: Hi {name}\n"
        "tests:\n  - name: greets\n    values: {name: Ada}\n    expected: Hi Ada\n",
        encoding="utf-8",
    )

    [spec], problems = load_template_file(path)

    assert problems == []
    assert spec.version_metadata == {
        TEST_CASES_KEY: [{"name": "greets", "values": {"name": "Ada"}, "expected": "Hi Ada"}]
    }
    assert spec.case_positions == ((5, 5),)
    assert [r.passed for r in run_version_cases(spec.template, spec.version_metadata)] == [True]


def test_cases_under_both_tests_and_metadata_test_cases_are_one_problem(tmp_path):
    path = tmp_path / "hook.yaml"
    path.write_text(
        "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\n"
        "metadata:\n  test_cases: [{name: x}]\ntests:\n  - name: y\n",
        encoding="utf-8",
    )

    specs, problems = load_template_file(path)

    assert specs == []
    assert [(p.line, p.column) for p in problems] == [(6, 1)]
    assert problems[0].message.startswith("tests and metadata.test_cases both hold test cases")
