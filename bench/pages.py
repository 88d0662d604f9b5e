"""Server time of the dashboard's pages with BENCH_TEMPLATES (default 1,000) templates x 10
versions in the mirror.

Run from the repository root: python -m bench.pages (BENCH_TEMPLATES=10000 for ten times the
rows; BENCH_QUERIES=1 also prints each page's queries, slowest first, to find what grows).
Loads the rows straight into a fresh Django database (DATABASE_URL, or a temporary SQLite
file) with bulk_create, plus open and executed requests and their audit events
(trail.record_many), then times 200 requests of each page through Django's test Client, in
process, signed in as a reviewer. No MLflow is involved: pages read the mirror.
Prints a short summary, then one JSON object as the last line. Goal: p95_ms <= 50 for every page.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.size import templates

TEMPLATES = templates()
VERSIONS = 10
PROMOTED = 200  # templates with a production and a staging version (and their history)
OPEN_REQUESTS = 150  # open requests to staging, for the inbox and the list's pending column
REQUESTS = 200  # timed requests per page
WARM_UP = 10
GOAL_P95_MS = 50.0
TEXT = (
    "You are a {persona} writing for {audience}. Write {count:d} posts about {topic}.\n"
    "Tone: {tone}. Each post at most {max_chars:d} characters. Avoid: {avoid}."
)


def name_of(number: int) -> str:
    return f"bench/team-{number % 10}/group-{number % 7}/template-{number:04d}"


def load(
    templates: int = TEMPLATES,
    *,
    first: int = 0,
    promoted: int = PROMOTED,
    open_requests: int = OPEN_REQUESTS,
) -> dict[str, int]:
    """Mirror rows, requests and audit events, written in bulk: templates ``first`` to
    ``first + templates``, the first ``promoted`` of them promoted, ``open_requests`` of them
    with an open request (tests load twice, at two sizes, with ``first``)."""
    import uuid

    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from registry_ui.core.template import parse_template
    from registry_ui.web.audit import trail
    from registry_ui.web.models import AuditEvent, PromotionRequest, Template, TemplateVersion

    alice, _ = User.objects.get_or_create(username="alice")
    alice.groups.add(Group.objects.get(name="authors"))
    bob, _ = User.objects.get_or_create(username="bob")
    bob.groups.add(Group.objects.get(name="reviewers"))
    numbers = range(first, first + templates)
    promoted_numbers = range(first, first + min(promoted, templates))
    open_numbers = range(first, first + min(open_requests, templates))
    variables = list(parse_template(TEXT).variables)
    now = timezone.now()
    Template.objects.bulk_create(
        Template(name=name_of(n), registered_model_name=name_of(n).replace("/", "."))
        for n in numbers
    )
    by_name = Template.objects.in_bulk(field_name="name")
    rows = []
    for n in numbers:
        for v in range(VERSIONS):
            stage = "dev"
            if n in promoted_numbers:
                stage = {0: "archived", 1: "production", 2: "staging"}.get(v, "dev")
            text = TEXT + " #tag" * v
            rows.append(
                TemplateVersion(
                    template=by_name[name_of(n)],
                    version=f"1.0.{v}",
                    major=1,
                    minor=0,
                    patch=v,
                    stage=stage,
                    text=text,
                    variables=variables,
                    metadata={
                        "author": "alice",
                        "purpose": f"posts for team {n % 10}",
                        "tags": ["bench", f"team-{n % 10}"],
                        "performance_metrics": {"engagement_rate": 0.05 + v / 1000},
                    },
                    author="alice",
                    registered_by="alice",
                    content_sha256=uuid.uuid4().hex * 2,
                    mlflow_version=str(v + 1),
                    created_at=now,
                    was_production=stage in ("production", "archived"),
                )
            )
    TemplateVersion.objects.bulk_create(rows, batch_size=2000)
    # As the mirror does when it adds versions: the list's "last change" column.
    Template.objects.filter(name__in=[name_of(n) for n in numbers]).note_changes()
    versions = {
        (row.template.name, row.version): row
        for row in TemplateVersion.objects.select_related("template").filter(
            version__in=["1.0.1", "1.0.3"], template__name__in=[name_of(n) for n in numbers]
        )
    }
    requests = [
        PromotionRequest(
            template=by_name[name_of(n)],
            version=versions[(name_of(n), "1.0.3")],
            content_sha256="0" * 64,
            from_stage="dev",
            target_stage="staging",
            requester=alice,
            version_authors=",alice,",
            justification=f"ready: template {n}",
            required_approvals=1,
        )
        for n in open_numbers
    ]
    done = [
        PromotionRequest(
            template=by_name[name_of(n)],
            version=versions[(name_of(n), "1.0.1")],
            content_sha256="0" * 64,
            from_stage="staging",
            target_stage="production",
            requester=alice,
            version_authors=",alice,",
            justification=f"beats 1.0.0: template {n}",
            required_approvals=2,
            status="done",
        )
        for n in promoted_numbers
    ]
    PromotionRequest.objects.bulk_create(requests + done)
    executed = {
        r.template.name: r.pk
        for r in PromotionRequest.objects.filter(
            status="done", template__name__in=[name_of(n) for n in promoted_numbers]
        ).select_related("template")
    }
    events = [
        AuditEvent(
            actor="mlflow",
            action="version.registered",
            object_type="template_version",
            object_id=f"{row.template.name}@{row.version}",
            before=None,
            after={"version": row.version, "stage": "dev"},
            source="external",
        )
        for row in rows
    ]
    for n in promoted_numbers:
        name = name_of(n)
        for number, before, after in (
            ("1.0.0", "dev", "staging"),
            ("1.0.0", "staging", "production"),
            ("1.0.1", "dev", "staging"),
            ("1.0.1", "staging", "production"),
            ("1.0.0", "production", "archived"),
            ("1.0.2", "dev", "staging"),
        ):
            events.append(
                AuditEvent(
                    actor="worker",
                    action="version.stage_changed",
                    object_type="template_version",
                    object_id=f"{name}@{number}",
                    before={"stage": before},
                    after={"stage": after},
                    source="worker",
                )
            )
        events.append(
            AuditEvent(
                actor="alice",
                action="request.executed",
                object_type="promotion_request",
                object_id=str(executed[name]),
                source="worker",
                after={
                    "kind": "promote",
                    "template": name,
                    "version": "1.0.1",
                    "target_stage": "production",
                    "justification": "beats 1.0.0",
                    "approved_by": ["bob", "carol"],
                },
            )
        )
    for start in range(0, len(events), 5000):
        trail.record_many(events[start : start + 5000])
    return {
        "templates": templates,
        "versions": len(rows),
        "requests": len(requests) + len(done),
        "audit_events": len(events),
    }


def measure(client, url: str) -> dict[str, float]:
    for _ in range(WARM_UP):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times, cpu = [], []
    for _ in range(REQUESTS):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        # This process's CPU time: what other load on the machine does not inflate (on
        # SQLite it includes the database's work; PostgreSQL's runs in its own process).
        "cpu_p50_ms": round(statistics.median(cpu), 2),
    }


def print_queries(client, url: str) -> None:
    """Each query of one request to ``url``, slowest first, with its time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = captured.captured_queries
    print(f"  {len(queries)} queries on {url}:")
    for query in queries:
        print(f"    {float(query['time']) * 1000:7.2f} ms  {query['sql'][:160]}")
        if connection.vendor == "sqlite" and query["sql"].startswith("SELECT"):
            with connection.cursor() as cursor:  # full scans are what grows with the tables
                cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
                for row in cursor.fetchall():
                    if "SCAN" in row[-1]:
                        print(f"              plan: {row[-1]}")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(root) / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.urls import NoReverseMatch, reverse

        from registry_ui.web.models import Template

        # As deployed: DEBUG off (no query log, cached templates). Not setup_test_environment():
        # its instrumented rendering copies every template context for the test client.
        settings.DEBUG = False
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        call_command("migrate", verbosity=0)
        if Template.objects.exists():
            raise SystemExit(
                "bench.pages needs an empty database: point DATABASE_URL at a fresh one"
            )
        started = time.perf_counter()
        loaded = load()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have, on a database in use
        print(f"loaded {loaded} in {time.perf_counter() - started:.1f}s ({connection.vendor})")
        client = Client()
        client.force_login(User.objects.get(username="bob"))
        promoted = name_of(7)
        pages = {
            "templates": "/",
            "template": f"/templates/{promoted}",
            "diff": f"/templates/{promoted}/-/diff?from=1.0.1&to=1.0.3&view=side",
            # The list sorted by last change and by pending requests (subqueries per row).
            "by-change": "/?sort=changed",
            "by-pending": "/?sort=pending",
            # A version's page with its "Use in code"; the rollback form (production's
            # history from the audit trail); the compare page (pick-lists, verdict, chart).
            "version": f"/templates/{promoted}/-/versions/1.0.1",
            "rollback": f"/rollback/new?template={promoted}",
            "compare": f"/experiments/compare?template={promoted}",
        }
        try:
            pages["inbox"] = reverse("request_list")
        except NoReverseMatch:
            print("the inbox (request_list) does not exist yet: not measured")
        results = {}
        for page, url in pages.items():
            results[page] = measure(client, url)
            if os.environ.get("BENCH_QUERIES"):
                print_queries(client, url)
            print(
                f"{page:10s} {url}: p50 {results[page]['p50_ms']} ms, "
                f"p95 {results[page]['p95_ms']} ms"
            )
        summary = {
            "benchmark": "pages",
            "database": connection.vendor,
            "debug": settings.DEBUG,
            **loaded,
            "requests_per_page": REQUESTS,
            "p50_ms": {page: r["p50_ms"] for page, r in results.items()},
            "p95_ms": {page: r["p95_ms"] for page, r in results.items()},
            "cpu_p50_ms": {page: r["cpu_p50_ms"] for page, r in results.items()},
            "load_average_1m": round(os.getloadavg()[0], 2),
            "goal_p95_ms": GOAL_P95_MS,
            "goal_met": all(r["p95_ms"] <= GOAL_P95_MS for r in results.values()),
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
