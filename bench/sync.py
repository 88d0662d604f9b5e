"""Full and incremental sync of BENCH_TEMPLATES (default 1,000) templates x 10 versions.

Run from the repository root: python -m bench.sync (BENCH_TEMPLATES=10000 for 100,000
versions). Fills an MLflow SQLite store once (about 3 minutes per 10,000 versions; kept in
var/bench/ for later runs), serves it with `mlflow server` on a free loopback port, and times
into a fresh Django database (DATABASE_URL, or a temporary SQLite file): the first full
sync, a full sweep with nothing changed, an incremental pass with nothing changed, one after
100 versions were added (100 templates), and a webhook's single-template sync after an alias
moved outside. Prints one JSON object last. BENCH_NATIVE=1000 adds 1,000 native prompts x 10
versions (MLflow's Prompt Registry) to the same store, mirrored by the same full sweep.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.size import templates

TEMPLATES = templates()
VERSIONS = 10
PROMOTED = 100  # templates that also get a production and a staging version
CHANGED = 100  # templates given a new version before the second incremental pass
STORE = Path("var/bench") / f"sync-{TEMPLATES}x{VERSIONS}-mlflow.db"
# BENCH_NATIVE=1000: that many native prompts (MLflow's Prompt Registry) x 10 versions in the
# same store, next to the templates (issue 18); their store is the templates' plus them.
NATIVE = int(os.environ.get("BENCH_NATIVE", "0") or 0)
NATIVE_STORE = Path("var/bench") / f"sync-{TEMPLATES}x{VERSIONS}-native{NATIVE}x10-mlflow.db"


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


def fill_native(path: Path) -> None:
    """The templates' store plus NATIVE native prompts x 10 versions, registered with MLflow's
    own API (text prompts in double braces, a model configuration; every tenth prompt has
    its 9th version as production and its 10th as staging)."""
    from mlflow.tracking import MlflowClient

    partial = path.with_suffix(".partial")
    shutil.copy(STORE, partial)
    uri = f"sqlite:///{partial.resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    started = time.perf_counter()
    for p in range(NATIVE):
        name = f"bench-native.prompt-{p:04d}"
        for v in range(VERSIONS):
            client.register_prompt(
                name,
                "Write a {{kind}} about {{topic}} for {{audience}}." + " Keep it short." * v,
                commit_message=f"edit {v}",
                model_config={"temperature": round(0.1 * v, 1), "max_tokens": 200},
            )
        if p % 10 == 0:
            client.set_prompt_alias(name, "production", VERSIONS - 1)
            client.set_prompt_alias(name, "staging", VERSIONS)
        if (p + 1) % 100 == 0:
            print(f"  registered {(p + 1) * VERSIONS} native versions "
                  f"({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip
    partial.rename(path)


def main() -> None:
    from tests.support.mlflow_server import bench_server

    if not STORE.exists():
        print(f"filling {STORE} with {TEMPLATES} templates x {VERSIONS} versions (once)")
        fill_store(STORE)
    if NATIVE and not NATIVE_STORE.exists():
        print(f"filling {NATIVE_STORE} with {NATIVE} native prompts x {VERSIONS} versions (once)")
        fill_native(NATIVE_STORE)
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        shutil.copy(NATIVE_STORE if NATIVE else STORE, root / "mlflow.db")
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{root / 'registry_ui.sqlite3'}")
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from mlflow.tracking import MlflowClient

        # As deployed: DEBUG off. With it on, Django formats every query's SQL for its log
        # (about a tenth of a first sync's CPU here, measured with BENCH_PROFILE).
        settings.DEBUG = False

        from registry_ui.core.names import to_registered_model_name
        from registry_ui.prompt_model import configure_mlflow_with_registry
        from registry_ui.web.models import TemplateVersion
        from registry_ui.web.prompts.mirror import sync_changes, sync_one, sync_registry

        call_command("migrate", verbosity=0)
        TemplateVersion.objects.all().delete()
        server = bench_server(root)
        server.start()
        try:
            configure_mlflow_with_registry(server.url)
            first, first_seconds = timed(sync_registry)
            second, second_seconds = timed(sync_registry)
            idle, idle_seconds = timed(sync_changes)
            add_versions(CHANGED)
            changed, changed_seconds = timed(sync_changes)
            plain = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
            name = f"bench/sync/team-{(PROMOTED + 1) % 10}/template-{PROMOTED + 1}"
            plain.set_registered_model_alias(to_registered_model_name(name), "staging", "3")
            one, one_seconds = timed(lambda: sync_one(name))
            assert one["changes"] == 1, one
        finally:
            server.stop()
    assert first["versions"] == TEMPLATES * VERSIONS, first
    assert changed["changes"] == CHANGED, changed
    database = os.environ["DATABASE_URL"].split(":", 1)[0]
    print(f"first sync: {first} in {first_seconds:.1f}s; database {database}")
    print(f"full sweep (no changes): {second} in {second_seconds:.1f}s")
    print(f"incremental pass (no changes): {idle} in {idle_seconds:.2f}s")
    print(f"incremental pass ({CHANGED} versions added): {changed} in {changed_seconds:.2f}s")
    print(f"webhook single-template sync (alias moved): {one} in {one_seconds:.2f}s")
    print(json.dumps({
        "templates": TEMPLATES,
        "native_prompts": NATIVE,
        "native_versions_mirrored": first.get("native_changes"),
        "seconds": round(first_seconds, 2),
        "mlflow_calls": first["mlflow_calls"],
        "versions": first["versions"],
        "changes": first["changes"],
        "second_sync_seconds": round(second_seconds, 2),
        "second_sync_mlflow_calls": second["mlflow_calls"],
        "incremental_idle_seconds": round(idle_seconds, 3),
        "incremental_idle_mlflow_calls": idle["mlflow_calls"],
        "incremental_changed_seconds": round(changed_seconds, 3),
        "incremental_changed_mlflow_calls": changed["mlflow_calls"],
        "incremental_changed_templates_read": changed["templates"],
        "webhook_sync_seconds": round(one_seconds, 3),
        "webhook_sync_mlflow_calls": one["mlflow_calls"],
        "database": database,
        "cpu_seconds": CPU,
    }))  # fmt: skip


CPU: dict[str, float] = {}  # each timed pass's CPU seconds in this process (not MLflow's)


def timed(fn):
    """Run ``fn`` and return (result, wall seconds); its CPU seconds go to ``CPU``. With
    BENCH_PROFILE=path, the first pass timed is profiled (cProfile) into that file."""
    profile_to = os.environ.get("BENCH_PROFILE")
    profiler = None
    if profile_to and not CPU:
        import cProfile

        profiler = cProfile.Profile()
    cpu, started = time.process_time(), time.perf_counter()
    result = profiler.runcall(fn) if profiler else fn()
    wall = time.perf_counter() - started
    CPU[f"pass {len(CPU) + 1}"] = round(time.process_time() - cpu, 2)
    if profiler:
        profiler.dump_stats(profile_to)
    return result, wall


def add_versions(count: int) -> None:
    """One new version in each of ``count`` templates, as another program would add them."""
    from registry_ui.prompt_model import PromptModel

    PromptModel.register_many(
        [
            PromptModel(
                f"bench/sync/team-{t % 10}/template-{t}",
                "🔥 {hook_text} - {cta} (new)",
                "2.0.0",
                metadata={
                    "author": "bench",
                    "purpose": "changed",
                    "tested_on": "bench",
                    "performance_metrics": {"engagement_rate": 0.05},
                },
            )
            for t in range(count)
        ],
        actor="bench",
    )


if __name__ == "__main__":
    main()
