"""500 versions registered through the workers vs the design note's naive loop.

Run from the repository root: python -m bench.batch_register
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Starts its own `mlflow server` and
one Celery worker process on a queue of its own, both as docker-compose.yml runs them: the
server with its uvicorn worker count (tests/support/mlflow_server.py keeps them equal) and the
worker with --concurrency=4. The Django database is DATABASE_URL, or a temporary SQLite file.
Both sides write to the same server in one run. Settings:
- BENCH_MLFLOW_STORE: the server's backend store, "sqlite" (default, a temporary file) or a
  PostgreSQL server as in docker-compose.yml (e.g. postgresql://postgres@127.0.0.1:5432), on
  which the run creates a database of its own and drops it afterwards;
- BENCH_MLFLOW_SERVER: the server's process model, "uvicorn:N" (N uvicorn workers) or
  "gunicorn:N" (N sync workers);
- BENCH_WORKER_CONCURRENCY: the Celery worker's pool processes (default 4).
Prints one JSON object last.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATES = 50
VERSIONS_EACH = 10  # 500 versions in all
# What the default metadata policy (REGISTRY_UI_REQUIRED_METADATA) requires of a version.
BENCH_METADATA = {
    "author": "bench",
    "purpose": "benchmark",
    "tested_on": "bench",
    "performance_metrics": {"engagement_rate": 0.05},
}


def versions(prefix: str):
    for t in range(TEMPLATES):
        for v in range(VERSIONS_EACH):
            yield (f"{prefix}/team-{t % 5}/template-{t}", f"1.0.{v}",
                   "🔥 {hook_text} - {cta}" + " #tag" * v)  # fmt: skip


def naive_loop(client, prefix: str) -> float:
    """The design note's register(): a run, an artifact and a version, one after another.

    Trimmed to the least a correct loop does: the registered model is created once per
    template, the version's tags go in its create call, and each run is ended (as
    ``with mlflow.start_run():`` ends it; a run left RUNNING for good is a bug). The version
    keeps what registry_ui keeps of it: its text, number and metadata.
    """
    experiment = client.create_experiment(f"naive-{uuid.uuid4().hex[:6]}")
    created = set()
    metadata = json.dumps(BENCH_METADATA, sort_keys=True)
    started = time.perf_counter()
    for name, version, text in versions(prefix):
        registered = name.replace("/", ".")
        if registered not in created:
            client.create_registered_model(registered)
            created.add(registered)
        run = client.create_run(experiment)
        client.log_text(run.info.run_id, text, "prompt/template.txt")
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            registered,
            source=f"runs:/{run.info.run_id}/prompt/template.txt",
            run_id=run.info.run_id,
            tags={"version": version, "template": text, "metadata": metadata},
        )
    return time.perf_counter() - started


def start_server(root: Path, store_uri: str | None):
    """The bench's `mlflow server` (see bench_server) on ``store_uri`` (None: SQLite), in the
    process model BENCH_MLFLOW_SERVER names: "uvicorn:N" (MLflow's default server, N workers)
    or "gunicorn:N" (N sync workers)."""
    from tests.support.mlflow_server import SERVER_WORKERS, MlflowServer, bench_server

    default = f"uvicorn:{SERVER_WORKERS}"
    kind, _, workers = os.environ.get("BENCH_MLFLOW_SERVER", default).partition(":")
    workers = int(workers or 1)
    if kind not in ("uvicorn", "gunicorn") or workers < 1:
        raise SystemExit(f"BENCH_MLFLOW_SERVER={kind}:{workers}: use uvicorn:N or gunicorn:N")

    class Server(MlflowServer):
        def command(self) -> list[str]:
            command = super().command()
            at = command.index("--workers")
            command[at : at + 2] = ["--workers", str(workers)]
            if kind == "gunicorn":
                command += ["--gunicorn-opts", "--worker-class sync --timeout 60"]
            if store_uri:
                at = command.index("--backend-store-uri")
                command[at + 1] = store_uri
            return command

    base = bench_server(root)
    return Server(base.root, base.port, enable_jobs=base.enable_jobs).start(), f"{kind}:{workers}"


@contextmanager
def mlflow_store():
    """The server's store: None for SQLite, or the URI of a database created for this run on
    the PostgreSQL server BENCH_MLFLOW_STORE names (dropped afterwards)."""
    setting = os.environ.get("BENCH_MLFLOW_STORE", "sqlite").strip()
    if setting in ("", "sqlite"):
        yield None, "sqlite"
        return
    url = urlsplit(setting)
    if url.scheme.split("+")[0] not in ("postgres", "postgresql"):
        raise SystemExit(
            f"BENCH_MLFLOW_STORE={setting!r}: use sqlite or a PostgreSQL server URL "
            "such as postgresql://postgres@127.0.0.1:5432"
        )
    import psycopg

    server = url._replace(scheme="postgresql", path="/postgres").geturl()
    database = f"bench_mlflow_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    try:
        yield url._replace(scheme="postgresql+psycopg", path=f"/{database}").geturl(), "postgresql"
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_QUEUE"] = queue
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{root / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        from django.core.management import call_command

        from registry_ui.prompt_model import configure_mlflow_with_registry, get_mlflow_client
        from registry_ui.registry import NewVersion
        from registry_ui.web.models import Batch
        from registry_ui.web.operations import queue as operations
        from tests.support.workers import WorkerProcess, wait_for

        call_command("migrate", verbosity=0)
        concurrency = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "4"))
        store = ExitStack()  # the PostgreSQL store's database, dropped last
        server = worker = None
        try:
            store_uri, store_kind = store.enter_context(mlflow_store())
            server, server_model = start_server(root / "mlflow", store_uri)
            configure_mlflow_with_registry(server.url)
            client = get_mlflow_client()
            naive_seconds = naive_loop(client, "naive")
            print(f"naive loop: 500 versions in {naive_seconds:.1f}s", flush=True)

            worker = WorkerProcess(
                queue=queue,
                mlflow_uri=server.url,
                log_path=root / "worker.log",
                concurrency=concurrency,
            ).start()
            batch_versions = [
                NewVersion(name, version, text, BENCH_METADATA)
                for name, version, text in versions("batch")
            ]
            started = time.perf_counter()
            batch = operations.batch_register(versions=batch_versions, actor="bench")

            def done() -> bool:
                batch.refresh_from_db()
                return batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED)

            wait_for(done, timeout=900, interval=0.1, message="the batch")
            ours_seconds = time.perf_counter() - started
            assert (batch.status, batch.succeeded) == ("succeeded", 500), worker.log()
            retried = batch.operations.filter(attempts__gt=1).count()
            print(f"workers: 500 versions in {ours_seconds:.1f}s", flush=True)
        finally:
            if worker is not None:
                worker.stop()
            if server is not None:
                server.stop()
            store.close()
            _purge(queue)
    print(json.dumps({
        "naive_seconds": round(naive_seconds, 2),
        "workers_seconds": round(ours_seconds, 2),
        "naive_ms_per_version": round(naive_seconds / 0.5, 1),
        "workers_ms_per_version": round(ours_seconds / 0.5, 1),
        "speedup_vs_naive": round(naive_seconds / ours_seconds, 2),
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "mlflow_server": server_model,
        "mlflow_store": store_kind,
        "worker_concurrency": concurrency,
        "operations_retried": retried,
    }))  # fmt: skip


def _purge(queue: str) -> None:
    """Drop the messages the workers never took (operations their chains had carried out):
    the queue is this run's own, and Redis would keep them for good."""
    from registry_ui.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


if __name__ == "__main__":
    main()
