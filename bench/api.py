"""Server time of the API's list, version, diff and request endpoints with 1,000 templates x
10 versions in the mirror (the rows bench.pages loads); and registering 500 versions.

Run from the repository root: python -m bench.api  (the endpoints)
                              python -m bench.api register  (500 versions, see register())
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
import statistics
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


def register() -> None:
    """500 versions (50 templates x 10) registered end to end twice against the same `mlflow
    server` and Celery worker as bench.batch_register, after one warm-up version, in
    BENCH_ROUNDS (default 3) rounds that alternate which goes first: with the
    register_templates command on a directory of the 500 template files (as a runner with the
    database's credentials would), then through the API (POST /api/v1/batches with the same
    files under other names, in process through Django's test Client), each until its batch
    has succeeded. Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0).
    Prints one JSON object last. Goal: the API no slower than the command.
    """
    import sys
    import uuid
    from contextlib import ExitStack

    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["REGISTRY_UI_API_RATE_PER_MINUTE"] = "100000000"
    os.environ.setdefault("REGISTRY_UI_REQUIRED_METADATA", "none")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_QUEUE"] = queue
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{root / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        import yaml
        from django.conf import settings
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command
        from django.test import Client

        from bench.batch_register import (
            BENCH_METADATA,
            _purge,
            mlflow_store,
            start_server,
            versions,
        )
        from registry_ui.prompt_model import configure_mlflow_with_registry
        from registry_ui.registry import NewVersion
        from registry_ui.web.api import tokens
        from registry_ui.web.models import Batch
        from registry_ui.web.operations import queue as operations
        from tests.support.workers import WorkerProcess, wait_for

        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        call_command("migrate", verbosity=0)
        concurrency = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "4"))
        rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
        store, server, worker = ExitStack(), None, None

        def finished(batch_id: int, count: int = 500):
            def done() -> bool:
                return Batch.objects.get(pk=batch_id).status in ("succeeded", "failed")

            wait_for(done, timeout=900, interval=0.1, message=f"batch {batch_id}")
            batch = Batch.objects.get(pk=batch_id)
            assert (batch.status, batch.succeeded) == ("succeeded", count), worker.log()

        try:
            store_uri, store_kind = store.enter_context(mlflow_store())
            server, server_model = start_server(root / "mlflow", store_uri)
            configure_mlflow_with_registry(server.url)
            worker = WorkerProcess(
                queue=queue,
                mlflow_uri=server.url,
                log_path=root / "worker.log",
                concurrency=concurrency,
            ).start()
            # The versions' metadata names `bench` as their author: an author's account, as
            # the command and the API both require (a CI token's account cannot be one).
            authors = Group.objects.get(name="authors")
            User.objects.create_user("bench").groups.add(authors)

            def files_of(prefix: str) -> list[dict[str, str]]:
                return [
                    {
                        "path": f"{n.replace('/', '_')}-{v}.yaml",
                        "content": yaml.safe_dump(
                            {"name": n, "version": v, "template": t, "metadata": BENCH_METADATA}
                        ),
                    }
                    for n, v, t in versions(prefix)
                ]

            # The worker's first MLflow calls (connections, the server's first requests) are
            # paid by a warm-up version, not by whichever path is timed first.
            warm = operations.batch_register(
                versions=[NewVersion("warm/up", "1.0.0", "Hello {x}", BENCH_METADATA)],
                actor="bench",
            )
            finished(warm.pk, count=1)

            ci = User.objects.create_user("bench-ci")
            ci.groups.add(authors)
            _, raw = tokens.token_create(ci, name="bench", scopes=["register"])
            client = Client(headers={"Authorization": f"Bearer {raw}"})

            def by_command(prefix: str) -> tuple[float, float]:
                """register_templates on a directory of the 500 files, as a CI runner with
                the database's credentials would run it (read, validated, checked against
                MLflow, filed); (seconds until filed, seconds until the batch succeeded)."""
                folder = root / prefix
                folder.mkdir()
                for file in files_of(prefix):
                    (folder / file["path"]).write_text(file["content"])
                started = time.perf_counter()
                call_command("register_templates", str(folder), "--user", "bench", "--no-wait")
                filed = time.perf_counter() - started
                finished(Batch.objects.latest("pk").pk)
                return filed, time.perf_counter() - started

            def by_api(prefix: str) -> tuple[float, float]:
                """POST /api/v1/batches with the 500 files in one call (the same times)."""
                files = files_of(prefix)
                profile = None
                if os.environ.get("BENCH_PROFILE"):  # where the API call's time goes
                    import cProfile

                    profile = cProfile.Profile()
                    profile.enable()
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/batches",
                    {"files": files},
                    content_type="application/json",
                    headers={"Idempotency-Key": f"{queue}-{prefix}"},
                )
                filed = time.perf_counter() - started
                if profile is not None:
                    import pstats

                    profile.disable()
                    stats = pstats.Stats(profile, stream=sys.stderr)
                    stats.sort_stats("cumulative").print_stats(30)
                assert response.status_code == 202, response.content[:500]
                finished(response.json()["batch"])
                return filed, time.perf_counter() - started

            # Rounds alternate which path goes first, so neither always meets a warmer or
            # busier worker; the medians are compared.
            timings: dict[str, list[tuple[float, float]]] = {"command": [], "api": []}
            for round_ in range(rounds):
                order = [("command", by_command), ("api", by_api)]
                for path, run in order if round_ % 2 == 0 else order[::-1]:
                    filed, total = run(f"{path}{round_}")
                    timings[path].append((filed, total))
                    print(f"round {round_ + 1}, {path}: 500 versions in {total:.1f}s "
                          f"(filed in {filed:.2f}s)", flush=True)  # fmt: skip
        finally:
            if worker is not None:
                worker.stop()
            if server is not None:
                server.stop()
            store.close()
            _purge(queue)
    command_median = statistics.median(total for _, total in timings["command"])
    api_median = statistics.median(total for _, total in timings["api"])
    print(
        json.dumps(
            {
                "benchmark": "api.register",
                "rounds": rounds,
                "command_seconds": [round(total, 2) for _, total in timings["command"]],
                "api_seconds": [round(total, 2) for _, total in timings["api"]],
                "command_filed_seconds": [round(filed, 2) for filed, _ in timings["command"]],
                "api_filed_seconds": [round(filed, 2) for filed, _ in timings["api"]],
                "command_median_seconds": round(command_median, 2),
                "api_median_seconds": round(api_median, 2),
                "api_vs_command": round(api_median / command_median, 2),
                "database": os.environ["DATABASE_URL"].split(":", 1)[0],
                "mlflow_server": server_model,
                "mlflow_store": store_kind,
                "worker_concurrency": concurrency,
                "goal_met": api_median <= command_median,
                "argv": sys.argv[1:],
            }
        )
    )


if __name__ == "__main__":
    import sys

    register() if sys.argv[1:] == ["register"] else main()
