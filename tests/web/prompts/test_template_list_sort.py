"""The template list sorts by name, by last change and by pending requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_ui.web.models import PromotionRequest
from tests.support.mirror_rows import signed_in, template, version

pytestmark = pytest.mark.django_db


def names(page) -> list[str]:
    return [row.template.name for row in page.context["rows"]]


@pytest.fixture
def three(erin):
    """b changed last, c has two open requests, a one."""
    rows = {}
    for name, day in (("t/a", 1), ("t/b", 3), ("t/c", 2)):
        rows[name] = template(name)
        version(rows[name], "1.0.0", created_at=datetime(2026, 11, day, tzinfo=UTC))
        version(rows[name], "1.1.0", created_at=datetime(2026, 10, day, tzinfo=UTC))
    for name, count in (("t/a", 1), ("t/c", 2)):
        for n in range(count):
            PromotionRequest.objects.create(
                kind="promote",
                template=rows[name],
                version=rows[name].versions.get(version=f"1.{n}.0"),
                target_stage="staging",
                requester=erin,
                justification="x",
                required_approvals=1,
            )
    return rows


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["t/a", "t/b", "t/c"]),
        ("changed", ["t/b", "t/c", "t/a"]),
        ("pending", ["t/c", "t/a", "t/b"]),
    ],
)
def test_it_sorts_by(three, reader, sort, expected):
    page = signed_in(reader).get("/", {"sort": sort} if sort else {})

    assert names(page) == expected
    assert f'<option value="{sort}" selected>' in page.text


def test_an_unknown_sort_is_refused_with_the_accepted_ones(three, reader):
    page = signed_in(reader).get("/", {"sort": "size"})

    assert page.status_code == 400
    assert "sort &#x27;size&#x27; is not offered: use sort=changed, sort=pending (or none)" in (
        page.text
    )


@pytest.mark.parametrize("sort", ["changed", "pending"])
def test_sorting_costs_the_same_queries_for_3_and_30_templates(three, reader, sort):
    client = signed_in(reader)
    client.get("/", {"sort": sort})  # warm: the authors and folders as a second view finds them
    with CaptureQueriesContext(connection) as few:
        client.get("/", {"sort": sort})
    for n in range(27):
        version(template(f"u/{n}"), "1.0.0")
    client.get("/", {"sort": sort})
    with CaptureQueriesContext(connection) as many:
        client.get("/", {"sort": sort})

    assert len(few) == len(many)


def test_pending_first_pages_through_every_template_once(three, reader, erin):
    """Across the page boundary: the templates with open requests first, then the rest by
    name, with a folder filter too, and none shown twice or left out."""
    for n in range(60):
        version(template(f"t/z{n:02d}"), "1.0.0")
    late = template("t/zz-late")
    version(late, "1.0.0")
    PromotionRequest.objects.create(
        kind="promote",
        template=late,
        version=late.versions.get(),
        target_stage="staging",
        requester=erin,
        justification="x",
        required_approvals=1,
    )
    client = signed_in(reader)

    first = names(client.get("/", {"sort": "pending"}))
    second = names(client.get("/", {"sort": "pending", "page": 2}))
    in_folder = names(client.get("/", {"sort": "pending", "folder": "t", "page": 2}))

    assert first[:3] == ["t/c", "t/a", "t/zz-late"]
    assert first[3:] == sorted(first[3:]) and len(first) == 50
    everything = first + second
    assert len(everything) == len(set(everything)) == 64
    assert second == sorted(set(everything) - set(first))
    assert in_folder == second
