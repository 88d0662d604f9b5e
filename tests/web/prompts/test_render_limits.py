"""The render preview and the editor keep renders within the limits: a version whose spec,
whose viewer's values, or whose many fields would build gigabytes is refused before anything
is built, with the field, where it is and the limit; the editor refuses such specs at
line:column; a JSON value nested too deeply is marked beside its field with the limit.

The pages are asked for in a child process whose memory is capped, so a render that builds
the text (as before the limits) runs out of memory there instead of passing."""

from __future__ import annotations

import html

import pytest
from django.conf import settings

from tests.support.limited import run_limited
from tests.support.mirror_rows import HTMX, signed_in, template, version

WIDTH = settings.INPUT_LIMITS.format_width
LENGTH = settings.INPUT_LIMITS.rendered_length
# Django and the app take about 400 MB of address space in a child; a gigabyte-wide field
# needs more than twice what is left.
PAGE_MEMORY_MB = 900


def preview_in_child(path: str, query: dict) -> dict:
    child = run_limited(
        f"""
        response = signed_in("alice").get({path!r}, {query!r})
        print(json.dumps({{"status": response.status_code, "text": response.text}}))
        """,
        memory_mb=PAGE_MEMORY_MB,
        django=True,
    )
    assert not child.ran_out, child.stderr[-2000:]
    return child.result


@pytest.mark.django_db(transaction=True)
def test_a_preview_of_a_field_repeated_over_a_long_value_is_refused_within_bounded_memory(alice):
    # No width, no precision: 30,000 fields of a 10,000-character value are 300 million.
    version(template("t/many"), "1.0.0", "{x}" * 30_000)

    page = preview_in_child("/templates/t/many/-/versions/1.0.0", {"v.x": "y" * 10_000})

    assert page["status"] == 200
    assert (
        f"the rendered text would be longer than {LENGTH:,} characters, the most rendered here"
        in html.unescape(page["text"])
    )


@pytest.mark.django_db(transaction=True)
def test_a_viewer_cannot_choose_a_gigabyte_wide_field_through_a_spec_value(alice):
    version(template("t/chosen"), "1.0.0", "Hi {x:>{w}}")

    page = preview_in_child(
        "/templates/t/chosen/-/versions/1.0.0", {"v.x": "Ann", "v.w": "999999999"}
    )

    assert page["status"] == 200
    assert "asks for a width of 999,999,999" in page["text"]
    assert 'class="prompt output"' not in page["text"]


@pytest.mark.django_db
def test_a_preview_within_the_limits_renders_as_before(alice):
    version(template("t/fine"), "1.0.0", "Hi {x:>{w}}!")

    page = signed_in(alice).get("/templates/t/fine/-/versions/1.0.0", {"v.x": "Ann", "v.w": "6"})

    assert '<pre class="prompt output">Hi    Ann!</pre>' in page.text


@pytest.mark.django_db
def test_the_editor_refuses_a_width_past_the_limit_at_its_line_and_column(alice):
    draft = {"name": "t/new", "version": "1.0.0", "metadata": "{}"}

    check = signed_in(alice).post(
        "/versions/validate", {**draft, "template": "Hello\n{x:,.999999999f}"}, headers=HTMX
    )

    assert "format precision 999999999 is too large" in check.text
    assert "line 2, column 4</span> (2:4)" in check.text  # where the spec starts


@pytest.mark.django_db
def test_a_preview_value_nested_too_deeply_is_marked_beside_its_field_with_the_limit(alice):
    version(template("t/deep-preview"), "1.0.0", "Hi {user[name]}")

    page = signed_in(alice).get(
        "/templates/t/deep-preview/-/versions/1.0.0", {"v.user": "[" * 5000 + "]" * 5000}
    )

    assert page.status_code == 200
    assert "nested more than 64 levels deep; at most 64 are accepted" in page.text
