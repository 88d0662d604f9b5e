"""The diff's broken test cases say which expectation failed, and how."""

from __future__ import annotations

import pytest

from tests.support.mirror_rows import signed_in, template, version

pytestmark = pytest.mark.django_db


def test_each_broken_case_names_the_expectation_it_misses(reader):
    cases = [
        {"name": "fits a post", "values": {"name": "Ann"}, "max_length": 20},
        {"name": "says hi", "values": {"name": "Ann"}, "contains": ["Hi"]},
    ]
    row = template("t/cases")
    version(row, "1.0.0", "Hi {name}", metadata={"test_cases": cases})
    version(
        row, "1.1.0", "Hello there {name}, a much longer greeting", metadata={"test_cases": cases}
    )

    diff = signed_in(reader).get("/templates/t/cases/-/diff", {"from": "1.0.0", "to": "1.1.0"})

    assert (
        "<strong>fits a post</strong>: the expectation “at most 20 characters” fails: is 39 "
        "characters long, 19 over" in diff.text
    )
    assert (
        "<strong>says hi</strong>: the expectation “contains &#x27;Hi&#x27;” fails: not found in "
        "the rendered text" in diff.text
    )
