"""The render preview and the editor keep format specs within the limits: a version whose
spec (or whose viewer's values) would build gigabytes is refused before anything is built,
with the field, where it is and the limit; the editor refuses such specs at line:column.

The pages are asked for in a child process whose memory is capped, so a render that builds
the text (as before the limits) runs out of memory there instead of passing."""

from __future__ import annotations

import html

import pytest
from django.conf import settings

from tests.support.limited import run_limited
from tests.support.mirror_rows import HTMX, signed_in, template, version

WIDTH = settings.INPUT_LIMITS.format_width
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
def test_a_preview_of_a_gigabyte_wide_spec_is_refused_within_bounded_memory(alice):
    # Registered before the limits (or outside registry_ui): the mirror holds it as it is.
    version(template("t/wide"), "1.0.0", "Hi {x:>999999999}")

    page = preview_in_child("/templates/t/wide/-/versions/1.0.0", {"v.x": "Ann"})

    assert page["status"] == 200
    assert (
        f"field 'x' at 1:4 asks for a width of 999,999,999 with format spec '>999999999': a "
        f"width may be at most {WIDTH:,} here"
    ) in html.unescape(page["text"])


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

    assert "precision 999,999,999 at 2:6 is too large" in check.text
    assert "line 2, column 6</span> (2:6)" in check.text
