"""load_from_registry cache hit vs MlflowClient.get_model_version_by_alias.

Run from the repository root: python -m bench.registry_lookup
Starts its own `mlflow server` on a free loopback port; prints one JSON object last.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from registry_ui.prompt_model import PromptModel, configure_mlflow_with_registry, get_mlflow_client
from tests.support.mlflow_server import bench_server

NAME = "bench/lookup/hook"
MLFLOW_CALLS = 200
CACHE_HITS = 200_000


def per_call_us(fn, count: int, repeats: int = 5) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        timings.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(timings)


def native_lookup() -> dict[str, float]:
    """A native prompt (MLflow's Prompt Registry): load_from_registry's cache hit vs
    mlflow.genai.load_prompt by alias, without MLflow's own cache (cache_ttl_seconds=0: one
    request per call) and with its default cache."""
    import mlflow

    name = "bench-native-hook"
    mlflow.genai.register_prompt(name, "🔥 {{ hook_text }} - {{ cta }}")
    mlflow.genai.set_prompt_alias(name, "production", 1)
    uri = f"prompts:/{name}@production"
    PromptModel.load_from_registry(name)  # fill the cache
    hit_us = per_call_us(lambda: PromptModel.load_from_registry(name), CACHE_HITS)
    mlflow.genai.load_prompt(uri, cache_ttl_seconds=0)  # warm the connection
    uncached_us = per_call_us(
        lambda: mlflow.genai.load_prompt(uri, cache_ttl_seconds=0), MLFLOW_CALLS, repeats=3
    )
    mlflow.genai.load_prompt(uri)
    mlflow_cached_us = per_call_us(lambda: mlflow.genai.load_prompt(uri), 20_000, repeats=3)
    return {
        "native_cache_hit_us": round(hit_us, 3),
        "mlflow_load_prompt_us": round(uncached_us, 1),
        "mlflow_load_prompt_cached_us": round(mlflow_cached_us, 2),
        "native_speedup_vs_load_prompt": round(uncached_us / hit_us, 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        server = bench_server(Path(root))
        started = time.perf_counter()
        server.start()
        print(f"mlflow server up in {time.perf_counter() - started:.1f}s at {server.url}")
        try:
            configure_mlflow_with_registry(server.url)
            metadata = {
                "author": "bench",
                "purpose": "benchmark",
                "tested_on": "bench",
                "performance_metrics": {"engagement_rate": 0.05},
            }
            model = PromptModel(NAME, "🔥 {hook_text} - {cta}", "1.0.0", metadata=metadata)
            model.register()
            model.promote_to_staging()
            model.promote_to_production()
            client = get_mlflow_client()
            registered = NAME.replace("/", ".")

            PromptModel.load_from_registry(NAME)  # fill the cache
            hit_us = per_call_us(lambda: PromptModel.load_from_registry(NAME), CACHE_HITS)
            client.get_model_version_by_alias(registered, "production")  # warm the connection
            mlflow_us = per_call_us(
                lambda: client.get_model_version_by_alias(registered, "production"),
                MLFLOW_CALLS,
                repeats=3,
            )
            native = native_lookup()
        finally:
            server.stop()
    result = {
        "cache_hit_us": round(hit_us, 3),
        "mlflow_get_by_alias_us": round(mlflow_us, 1),
        "speedup_vs_mlflow": round(mlflow_us / hit_us, 1),
        **native,
    }
    print(f"cache hit {hit_us:.2f} us, get_model_version_by_alias {mlflow_us / 1000:.2f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
