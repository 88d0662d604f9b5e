"""Comparing two versions of a template: variables, fields, text, metadata and bump."""

from __future__ import annotations

import json
import time

import pytest

from registry_ui.core.diff import compare_templates, word_diff
from registry_ui.core.template import TemplateValidationError

HOOK_V1 = "Check this: {text}"
HOOK_V2 = "🚀 Check this: {text} - {cta}"


def test_it_lists_variables_added_in_new_order_and_removed_in_old_order():
    diff = compare_templates("{a} {b} {c}", "{d} {a} {e}")["template_diff"]

    assert diff["variables_added"] == ["d", "e"]
    assert diff["variables_removed"] == ["b", "c"]


def test_the_design_note_comparison_adds_cta_and_breaks_callers():
    diff = compare_templates(HOOK_V1, HOOK_V2)["template_diff"]

    assert diff["variables_added"] == ["cta"]
    assert diff["variables_removed"] == []
    assert diff["breaks_callers"] is True
    assert diff["unchanged"] is False


def test_it_reports_a_changed_spec_or_conversion_of_a_field_kept():
    diff = compare_templates("{balance:.2f} {name}", "{balance:.3f} {name!r}")["template_diff"]

    assert diff["fields_changed"] == [
        {"path": "balance", "old_format_spec": ".2f", "new_format_spec": ".3f",
         "old_conversion": None, "new_conversion": None},
        {"path": "name", "old_format_spec": "", "new_format_spec": "",
         "old_conversion": None, "new_conversion": "r"},
    ]  # fmt: skip
    assert diff["breaks_callers"] is True


def test_removing_a_variable_or_rewording_does_not_break_callers():
    diff = compare_templates("Hi {name} {extra}", "Hello {name}")["template_diff"]

    assert diff["fields_changed"] == []
    assert diff["breaks_callers"] is False


def test_it_compares_fields_by_their_whole_path():
    diff = compare_templates("{user.name:>5}", "{user.name:<5} {user.id}")["template_diff"]

    assert [change["path"] for change in diff["fields_changed"]] == ["user.name"]
    assert diff["variables_added"] == []


def test_the_same_text_is_unchanged_with_equal_hunks_only():
    diff = compare_templates("a\n{b}", "a\n{b}")["template_diff"]

    assert diff["unchanged"] is True
    assert diff["lines"] == [
        {"op": "equal", "old_start": 1, "new_start": 1, "old": ["a", "{b}"], "new": ["a", "{b}"]}
    ]
    assert diff["unified"] == ""


def test_it_gives_line_hunks_with_one_based_starts():
    diff = compare_templates("one\ntwo\nthree", "one\nTWO\nthree\nfour")["template_diff"]

    assert [
        (h["op"], h["old_start"], h["new_start"], h["old"], h["new"]) for h in diff["lines"]
    ] == [
        ("equal", 1, 1, ["one"], ["one"]),
        ("replace", 2, 2, ["two"], ["TWO"]),
        ("equal", 3, 3, ["three"], ["three"]),
        ("insert", 4, 4, [], ["four"]),
    ]


def test_it_highlights_the_words_that_changed_in_a_replaced_line():
    diff = compare_templates(HOOK_V1, HOOK_V2)["template_diff"]

    [hunk] = diff["lines"]
    assert hunk["op"] == "replace"
    assert hunk["words"] == [
        {"op": "insert", "text": "🚀 "},
        {"op": "equal", "text": "Check this: {text}"},
        {"op": "insert", "text": " - {cta}"},
    ]


def test_it_keeps_a_changed_field_as_one_word():
    assert word_diff("Pay {amount:.2f} now", "Pay {amount:.3f} now") == [
        {"op": "equal", "text": "Pay "},
        {"op": "delete", "text": "{amount:.2f}"},
        {"op": "insert", "text": "{amount:.3f}"},
        {"op": "equal", "text": " now"},
    ]


def test_it_gives_a_changed_middle_whole_when_comparing_its_words_would_cost_too_much():
    segments = word_diff("Say hi to {name} now", "Say hello to {user} now", max_pairs=0)

    assert segments == [
        {"op": "equal", "text": "Say "},
        {"op": "delete", "text": "hi to {name}"},
        {"op": "insert", "text": "hello to {user}"},
        {"op": "equal", "text": " now"},
    ]


def test_it_compares_long_repetitive_versions_quickly():
    words = ["alpha", "beta", "the", "{x}", "and"] * 3000
    old = " ".join(words)
    new = " ".join(reversed(words))
    started = time.perf_counter()

    diff = compare_templates(old, "\n".join([old, new, old]))

    assert time.perf_counter() - started < 5
    assert diff["template_diff"]["variables_added"] == []


def test_it_gives_a_unified_diff_labelled_with_the_versions():
    diff = compare_templates("a\nb", "a\nc", old_version="1.0.0", new_version="1.0.1")

    assert diff["template_diff"]["unified"] == "--- 1.0.0\n+++ 1.0.1\n@@ -1,2 +1,2 @@\n a\n-b\n+c"


def test_it_lists_metadata_added_removed_and_changed():
    diff = compare_templates(
        "x",
        "x",
        old_metadata={"author": "a", "tested_on": "threads", "target": 0.06},
        new_metadata={"author": "b", "target": 0.06, "purpose": "hooks"},
    )

    assert diff["metadata_diff"] == {
        "added": {"purpose": "hooks"},
        "removed": {"tested_on": "threads"},
        "changed": {"author": {"old": "a", "new": "b"}},
    }


def test_it_gives_the_required_bump_without_versions():
    bump = compare_templates(HOOK_V2, HOOK_V1)["bump"]

    assert bump == {
        "declared": None,
        "required": "major",
        "reasons": ["removes variable 'cta'"],
        "ok": None,
        "minimum_version": None,
    }


@pytest.mark.parametrize(
    ("new_version", "declared", "ok"),
    [("2.0.0", "major", True), ("1.1.0", "minor", False), ("1.0.0", "none", False)],
)
def test_it_checks_the_declared_bump_against_the_required_one(new_version, declared, ok):
    bump = compare_templates(HOOK_V2, HOOK_V1, old_version="1.0.0", new_version=new_version)["bump"]

    assert (bump["declared"], bump["required"], bump["ok"]) == (declared, "major", ok)
    assert bump["minimum_version"] == "2.0.0"


def test_the_same_version_again_is_not_ok_even_without_changes():
    bump = compare_templates("x", "x", old_version="1.0.0", new_version="1.0.0")["bump"]

    assert (bump["required"], bump["ok"], bump["minimum_version"]) == ("none", False, "1.0.1")


def test_the_whole_comparison_is_json():
    diff = compare_templates(
        HOOK_V1,
        HOOK_V2,
        old_metadata={"n": 1},
        new_metadata={"n": [1, 2]},
        old_version="1.0.0",
        new_version="1.1.0",
    )

    assert json.loads(json.dumps(diff)) == diff


def test_it_refuses_an_invalid_template():
    with pytest.raises(TemplateValidationError):
        compare_templates("{a}", "Value: {}")
