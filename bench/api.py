"""Server time of the API's list, version, diff and request endpoints with 1,000 templates x
10 versions in the mirror (the rows bench.pages loads).

Run from the repository root: python -m bench.api
Loads the rows straight into a fresh Django database (DATABASE_URL, or a temporary SQLite
file), makes a personal API token for a reviewer, then times 200 calls of each endpoint
through Django's test Client, in process, with the token (the rate limit raised out of the
way). No MLflow is involved: the API reads the mirror. The query count of each call is
fixed (tests/web/api/test_read.py asserts it); it is printed too.
Prints a short summary, then one JSON object as the last line. Goal: p95_ms <= 30 for each.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.pages import REQUESTS, load, measure, name_of

GOAL_P95_MS = 30.0


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(root) / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        os.environ["REGISTRY_UI_API_RATE_PER_MINUTE"] = "100000000"
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from registry_ui.web.api import tokens
        from registry_ui.web.models import PromotionRequest, Template

        settings.DEBUG = False
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        call_command("migrate", verbosity=0)
        if Template.objects.exists():
            raise SystemExit("bench.api needs an empty database: point DATABASE_URL at a fresh one")
        started = time.perf_counter()
        loaded = load()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"loaded {loaded} in {time.perf_counter() - started:.1f}s ({connection.vendor})")
        _, raw = tokens.token_create(
            User.objects.get(username="bob"), name="bench", scopes=["read"]
        )
        client = Client(headers={"Authorization": f"Bearer {raw}"})
        promoted = name_of(7)
        request = PromotionRequest.objects.filter(status="open").order_by("pk").first()
        endpoints = {
            "templates": "/api/v1/templates?page=3",
            "version": f"/api/v1/templates/{promoted}/-/versions/1.0.3",
            "diff": f"/api/v1/templates/{promoted}/-/diff?from=1.0.1&to=1.0.3",
            "requests": "/api/v1/requests?status=open",
            "request": f"/api/v1/requests/{request.pk}",
        }
        results, queries = {}, {}
        for name, url in endpoints.items():
            results[name] = measure(client, url)
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            queries[name] = len(captured)
            print(
                f"{name:10s} {url}: p50 {results[name]['p50_ms']} ms, "
                f"p95 {results[name]['p95_ms']} ms, {queries[name]} queries"
            )
        summary = {
            "benchmark": "api",
            "database": connection.vendor,
            **loaded,
            "requests_per_endpoint": REQUESTS,
            "p50_ms": {n: r["p50_ms"] for n, r in results.items()},
            "p95_ms": {n: r["p95_ms"] for n, r in results.items()},
            "cpu_p50_ms": {n: r["cpu_p50_ms"] for n, r in results.items()},
            "queries": queries,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "goal_p95_ms": GOAL_P95_MS,
            "goal_met": all(r["p95_ms"] <= GOAL_P95_MS for r in results.values()),
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
