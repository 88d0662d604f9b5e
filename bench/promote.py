"""N promotions of distinct templates through the workers vs a plain-client alias loop.

Run from the repository root: python -m bench.promote
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Starts its own `mlflow server` (as
bench.batch_register does, same BENCH_MLFLOW_* settings) and one Celery worker process.
BENCH_PROMOTIONS sets N (default 100).

- plain loop: `set_registered_model_alias(name, "staging", "1")` once per template, the least a
  promotion can cost (no check, no tags, no legacy stage, no audit);
- workers: one batch of N staging moves, each an operation carried out with its intent
  recorded, the compare-and-set reads, the tag and legacy-stage writes and the mirror;
- MLflow calls per promotion: counted by the gateway on promotions run in this process by the
  same worker code (worker.run), on templates of their own;
- the compare-and-set window: the median time of one alias write (the read before it answers,
  then the write travels; a write by someone else inside that time is not seen).
Prints one JSON object last.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.batch_register import _purge, mlflow_store, start_server


def main() -> None:
    count = int(os.environ.get("BENCH_PROMOTIONS", "100"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue_name = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_QUEUE"] = queue_name
    os.environ.setdefault("REGISTRY_UI_REQUIRED_METADATA", "none")
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{root / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        from django.core.management import call_command

        from registry_ui.prompt_model import (
            PromptModel,
            configure_mlflow_with_registry,
            get_mlflow_client,
            get_registry,
        )
        from registry_ui.web.models import Batch, Operation
        from registry_ui.web.operations import queue, worker
        from registry_ui.web.prompts.mirror import sync_registry
        from tests.support.workers import WorkerProcess, wait_for

        call_command("migrate", verbosity=0)
        store = ExitStack()
        server = process = None
        try:
            store_uri, store_kind = store.enter_context(mlflow_store())
            server, server_model = start_server(root / "mlflow", store_uri)
            configure_mlflow_with_registry(server.url)
            client = get_mlflow_client()

            def templates(prefix: str, n: int) -> list[str]:
                names = [f"{prefix}/template-{i}" for i in range(n)]
                PromptModel.register_many(
                    [PromptModel(name, "Hi {who}", "1.0.0", metadata={"a": 1}) for name in names]
                )
                return names

            plain = templates("plain", count)
            alias_ms = []
            started = time.perf_counter()
            for name in plain:
                t0 = time.perf_counter()
                client.set_registered_model_alias(name.replace("/", "."), "staging", "1")
                alias_ms.append((time.perf_counter() - t0) * 1000)
            plain_seconds = time.perf_counter() - started
            print(f"plain loop: {count} alias writes in {plain_seconds:.2f}s", flush=True)

            # MLflow calls per promotion, by the worker's own code in this process.
            counted = templates("counted", 10)
            sync_registry()
            batch = queue.batch_transition(
                moves=[(name, "1.0.0", "staging") for name in counted], actor="bench"
            )
            gateway = get_registry().gateway
            calls_before = gateway.calls
            for operation in Operation.objects.filter(batch=batch):
                worker.run(str(operation.id), send=lambda ids, countdown=None: None)
            calls_per_promotion = (gateway.calls - calls_before) / len(counted)
            batch.refresh_from_db()
            assert batch.status == "succeeded", list(
                Operation.objects.filter(batch=batch).values_list("last_error", flat=True)
            )

            names = templates("workers", count)
            sync_registry()
            process = WorkerProcess(
                queue=queue_name, mlflow_uri=server.url, log_path=root / "worker.log"
            ).start()
            started = time.perf_counter()
            batch = queue.batch_transition(
                moves=[(name, "1.0.0", "staging") for name in names], actor="bench"
            )

            def done() -> bool:
                batch.refresh_from_db()
                return batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED)

            wait_for(done, timeout=900, interval=0.05, message="the promotions")
            workers_seconds = time.perf_counter() - started
            assert (batch.status, batch.succeeded) == ("succeeded", count), process.log()
            print(f"workers: {count} promotions in {workers_seconds:.2f}s", flush=True)
        finally:
            if process is not None:
                process.stop()
            if server is not None:
                server.stop()
            store.close()
            _purge(queue_name)
    print(json.dumps({
        "promotions": count,
        "plain_ms_per_promotion": round(plain_seconds * 1000 / count, 1),
        "workers_ms_per_promotion": round(workers_seconds * 1000 / count, 1),
        "mlflow_calls_per_promotion": round(calls_per_promotion, 1),
        "cas_window_ms_median": round(statistics.median(alias_ms), 1),
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "mlflow_server": server_model,
        "mlflow_store": store_kind,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
