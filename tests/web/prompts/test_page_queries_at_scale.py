"""Pages flat in the registry's size (issue 20): each page makes the same queries with few
and with many templates, requests and audit events, and on SQLite none of them reads a whole
table that grows with the registry's history (the audit trail, the requests).

The rows are bench.pages' (loaded in bulk, as the benchmark does), at two sizes: the second
load adds ten times the templates of the first, with their versions, requests and events.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.pages import load, name_of

pytestmark = pytest.mark.django_db

SMALL = 6
LARGE = 60
# Tables whose rows grow with the registry's history: no page may scan them whole.
GROWING = (
    "registry_web_auditevent",
    "registry_web_promotionrequest",
    "registry_web_templateversion",
)


def pages() -> dict[str, str]:
    promoted = name_of(1)
    return {
        "templates": "/",
        "template": f"/templates/{promoted}",
        "diff": f"/templates/{promoted}/-/diff?from=1.0.1&to=1.0.3&view=side",
        "inbox": "/requests/",
        "version": f"/templates/{promoted}/-/versions/1.0.1",
        "rollback": f"/rollback/new?template={promoted}",
        "compare": f"/experiments/compare?template={promoted}",
        "by-change": "/?sort=changed",
        "by-pending": "/?sort=pending",
        "by-pending-page-2": "/?sort=pending&page=2",
    }


def queries_of(client, url: str) -> list[str]:
    client.get(url)  # warm: sessions, permissions and caches as a second view finds them
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return [query["sql"] for query in captured.captured_queries]


def full_scans(sql: str) -> list[str]:
    """The tables of GROWING this query reads whole, from SQLite's plan ("SCAN t", with or
    without an index to walk them in order; "SEARCH t" is a lookup)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        details = [row[-1] for row in cursor.fetchall()]
    return [f"{d}: {sql[:300]}" for d in details if d.split()[:2] in (["SCAN", t] for t in GROWING)]


def test_every_page_makes_the_same_queries_at_two_sizes(client):
    from django.contrib.auth.models import User

    load(SMALL, promoted=3, open_requests=2)
    client.force_login(User.objects.get(username="bob"))
    small = {page: len(queries_of(client, url)) for page, url in pages().items()}

    load(LARGE, first=SMALL, promoted=30, open_requests=20)
    large = {page: len(queries_of(client, url)) for page, url in pages().items()}

    assert large == small
    assert all(count <= 15 for count in small.values()), small


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="reads SQLite's query plans: `make test` runs this file again on SQLite",
)
def test_no_page_reads_a_whole_growing_table(client):
    from django.contrib.auth.models import User

    # No ANALYZE: with statistics of a few hundred rows SQLite rightly scans small tables;
    # without, it plans as for large ones, which is what this test is about.
    load(LARGE, promoted=30, open_requests=20)
    client.force_login(User.objects.get(username="bob"))

    scans = {
        page: [
            scan
            for sql in queries_of(client, url)
            if sql.startswith("SELECT")
            for scan in full_scans(sql)
        ]
        for page, url in pages().items()
    }

    assert scans == {page: [] for page in pages()}


def test_the_compare_page_suggests_only_templates_with_figures(client):
    """Its list of template names comes from the experiments and imported metrics, not
    from every template in the registry (10,000 names made the page grow with it)."""
    from django.contrib.auth.models import User

    load(SMALL, promoted=3, open_requests=2)
    client.force_login(User.objects.get(username="bob"))

    page = client.get("/experiments/compare").content.decode()

    assert '<datalist id="template-names"></datalist>' in page  # no experiment, no metric
    assert name_of(2) not in page
