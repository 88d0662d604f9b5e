"""Full sync of 1,000 templates x 10 versions from an `mlflow server` into the mirror.

Run from the repository root: python -m bench.sync
Fills an MLflow SQLite store once (about 3 minutes; kept in var/bench/ for later runs),
serves it with `mlflow server` on a free loopback port, and times sync_registry() into a
fresh Django database (DATABASE_URL, or a temporary SQLite file). Prints one JSON object last.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

TEMPLATES = 1000
VERSIONS = 10
PROMOTED = 100  # templates that also get a production and a staging version
STORE = Path("var/bench") / f"sync-{TEMPLATES}x{VERSIONS}-mlflow.db"


def fill_store(path: Path) -> None:
    from registry_ui.prompt_model import PromptModel, configure_mlflow_with_registry

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    configure_mlflow_with_registry(f"sqlite:///{partial.resolve()}")
    started = time.perf_counter()
    for first in range(0, TEMPLATES, 100):
        PromptModel.register_many(
            [
                PromptModel(
                    f"bench/sync/team-{t % 10}/template-{t}",
                    "🔥 {hook_text} - {cta}" + " #tag" * v,
                    f"1.0.{v}",
                    metadata={
                        "author": "bench",
                        "purpose": f"template {t}",
                        "tested_on": "bench",
                        "performance_metrics": {"engagement_rate": 0.05},
                    },
                )
                for t in range(first, min(first + 100, TEMPLATES))
                for v in range(VERSIONS)
            ],
            actor="bench",
        )
        print(f"  registered {min(first + 100, TEMPLATES) * VERSIONS} versions "
              f"({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip
    for t in range(PROMOTED):
        name = f"bench/sync/team-{t % 10}/template-{t}"
        first, second = (
            PromptModel.load_from_registry(name, version=v) for v in ("1.0.0", "1.0.1")
        )
        first.promote_to_staging()
        first.promote_to_production()
        second.promote_to_staging()
    partial.rename(path)


def main() -> None:
    from tests.support.mlflow_server import bench_server

    if not STORE.exists():
        print(f"filling {STORE} with {TEMPLATES} templates x {VERSIONS} versions (once)")
        fill_store(STORE)
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        shutil.copy(STORE, root / "mlflow.db")
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{root / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        from django.core.management import call_command

        from registry_ui.prompt_model import configure_mlflow_with_registry
        from registry_ui.web.models import TemplateVersion
        from registry_ui.web.prompts.mirror import sync_registry

        call_command("migrate", verbosity=0)
        TemplateVersion.objects.all().delete()
        server = bench_server(root)
        server.start()
        try:
            configure_mlflow_with_registry(server.url)
            started = time.perf_counter()
            first = sync_registry()
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            second = sync_registry()
            second_seconds = time.perf_counter() - started
        finally:
            server.stop()
    assert first["versions"] == TEMPLATES * VERSIONS, first
    database = os.environ["DATABASE_URL"].split(":", 1)[0]
    print(f"first sync: {first} in {first_seconds:.1f}s; database {database}")
    print(f"second sync (no changes): {second} in {second_seconds:.1f}s")
    print(json.dumps({
        "seconds": round(first_seconds, 2),
        "mlflow_calls": first["mlflow_calls"],
        "versions": first["versions"],
        "changes": first["changes"],
        "second_sync_seconds": round(second_seconds, 2),
        "second_sync_mlflow_calls": second["mlflow_calls"],
        "database": database,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
