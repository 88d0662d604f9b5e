"""1,000,000 outcome events through POST /api/v1/outcomes, then the results page.

Run from the repository root: python -m bench.ingest
Starts gunicorn (registry_ui.wsgi, DEBUG off) on a free loopback port against
DATABASE_URL (default: a temporary SQLite file), sends the events over HTTP in batches of
1,000 from a few client threads, checks that every event was counted once, then times
the experiment's results page (in-process, the server's own time: median of 30 requests).
Prints one JSON object last. Settings: BENCH_EVENTS (1000000), BENCH_BATCH (1000),
BENCH_WORKERS (gunicorn workers, 4), BENCH_CLIENTS (client threads, 4).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
KEY = "bench-ingest"
DAYS = 14


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(token: str) -> tuple[int, datetime]:
    """A template with two versions, an experiment on them and the bench's service token."""
    from django.contrib.auth.models import User
    from django.db import connection

    from registry_ui.web.models import (
        Experiment,
        ExperimentVariant,
        OutcomeAggregate,
        OutcomeEvent,
        ServiceToken,
        Template,
        TemplateVersion,
    )

    old = Experiment.objects.filter(key=KEY).first()
    if old is not None:  # a previous run on the same database: start clean
        with connection.cursor() as cursor:
            for model in (OutcomeEvent, OutcomeAggregate):
                table = model._meta.db_table
                cursor.execute(f"DELETE FROM {table} WHERE experiment_id = %s", [old.pk])
        ExperimentVariant.objects.filter(experiment=old).delete()
        old.delete()
    ServiceToken.objects.filter(name="bench").delete()
    template, _ = Template.objects.get_or_create(
        name="bench/ingest/hook", defaults={"registered_model_name": "bench.ingest.hook"}
    )
    versions = []
    for minor, stage in ((1, "production"), (2, "staging")):
        row, _ = TemplateVersion.objects.get_or_create(
            template=template,
            version=f"1.{minor}.0",
            defaults={
                "major": 1, "minor": minor, "patch": 0, "stage": stage, "text": "Hi {who}",
                "variables": ["who"], "metadata": {"engagement_target": 0.05},
                "content_sha256": f"{minor:064d}", "mlflow_version": str(minor),
            },
        )  # fmt: skip
        versions.append(row)
    start = (datetime.now(UTC) - timedelta(days=DAYS - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    experiment = Experiment.objects.create(
        template=template, key=KEY, title="bench", metric="engagement", kind="rate",
        min_samples=10_000, target=0.05, start_at=start, stop_at=start + timedelta(days=30),
        created_by_username="bench",
    )  # fmt: skip
    for position, (name, row) in enumerate(zip(("control", "treatment"), versions, strict=True)):
        ExperimentVariant.objects.create(
            experiment=experiment, name=name, version=row, weight=50, position=position
        )
    ServiceToken.objects.create(
        name="bench",
        token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        prefix=token[:12],
        created_by="bench",
    )
    if not User.objects.filter(username="bench").exists():
        User.objects.create_superuser("bench", "bench@example.com", secrets.token_urlsafe(12))
    return experiment.pk, start


def hours_since(start: datetime) -> list[str]:
    now = datetime.now(UTC)
    moments = (start + timedelta(hours=h) for h in range(DAYS * 24))
    return [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments if m <= now]


def batch_body(number: int, hours: list[str]) -> bytes:
    """Batch ``number``: events spread over the experiment's days, 6% / 7% engagement."""
    parts = []
    first = number * BATCH
    for i in range(first, first + BATCH):
        treatment = i & 1
        engaged = 1 if (i * 2654435761) % 1000 < (70 if treatment else 60) else 0
        variant = "treatment" if treatment else "control"
        parts.append(
            f'{{"experiment":"{KEY}","variant":"{variant}","unit_id":"u{i // 3}",'
            f'"metric":"engagement","value":{engaged},"time":"{hours[(i // 7) % len(hours)]}",'
            f'"event_id":"e{i}"}}'
        )
    return ('{"events":[' + ",".join(parts) + "]}").encode()


def send_all(port: int, token: str, start: datetime) -> tuple[float, list[float], int]:
    batches = EVENTS // BATCH
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0}
    latencies: list[float] = []
    errors: list[str] = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    hours = hours_since(start)

    def client() -> None:
        while True:
            with lock:
                number = state["next"]
                state["next"] += 1
            if number >= batches or errors:
                return
            body = batch_body(number, hours)
            sent = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("POST", "/api/v1/outcomes", body, headers)
            response = connection.getresponse()
            answer = response.read()
            connection.close()
            elapsed = time.perf_counter() - sent
            if response.status != 200:
                errors.append(f"batch {number}: {response.status} {answer[:300]!r}")
                return
            with lock:
                latencies.append(elapsed)
                state["accepted"] += json.loads(answer)["accepted"]

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"ingestion failed: {errors[0]}")
    return seconds, latencies, state["accepted"]


def time_results_page(experiment_id: int) -> list[float]:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client(SERVER_NAME="127.0.0.1")  # an allowed host
    client.force_login(User.objects.get(username="bench"))
    url = f"/experiments/{KEY}/"
    for _ in range(3):  # warm: template loading, first queries
        assert client.get(url).status_code == 200
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{root / 'registry_ui.sqlite3'}")
        os.environ["REGISTRY_UI_VAR_DIR"] = str(root)
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        os.environ["LOG_LEVEL"] = "WARNING"
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from registry_ui.web.models import OutcomeAggregate, OutcomeEvent

        call_command("migrate", verbosity=0)
        token = "rui_" + secrets.token_urlsafe(32)
        experiment_id, start = prepare(token)
        connection.close()
        port = free_port()
        env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
        }
        with open(root / "gunicorn.log", "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "registry_ui.wsgi", "--bind",
                 f"127.0.0.1:{port}", "--workers", str(WORKERS), "--log-level", "warning"],
                env=env, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
            try:
                wait_for(port)
                seconds, latencies, accepted = send_all(port, token, start)
            finally:
                server.terminate()
                server.wait(timeout=30)
        stored = OutcomeEvent.objects.filter(experiment_id=experiment_id).count()
        counted = sum(
            OutcomeAggregate.objects.filter(experiment_id=experiment_id).values_list(
                "count", flat=True
            )
        )
        assert accepted == stored == counted == EVENTS // BATCH * BATCH, (
            accepted,
            stored,
            counted,
        )
        timings = time_results_page(experiment_id)
        database = connection.vendor
    events = EVENTS // BATCH * BATCH
    print(
        f"{events:,} events in {seconds:.1f}s through {WORKERS} gunicorn workers and "
        f"{CLIENTS} client threads; {database}"
    )
    print(json.dumps({
        "events_per_s": round(events / seconds),
        "results_page_ms": round(statistics.median(timings), 2),
        "results_page_ms_max": round(max(timings), 2),
        "batch_ms_median": round(statistics.median(latencies) * 1000, 1),
        "batch_ms_p95": round(sorted(latencies)[int(len(latencies) * 0.95)] * 1000, 1),
        "seconds": round(seconds, 1),
        "events": events,
        "batch": BATCH,
        "workers": WORKERS,
        "clients": CLIENTS,
        "database": database,
    }))  # fmt: skip


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


if __name__ == "__main__":
    main()
