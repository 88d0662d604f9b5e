"""The benchmarks' size: ``BENCH_TEMPLATES`` templates (default 1,000), read once here."""

from __future__ import annotations

import os


def templates(default: int = 1000) -> int:
    """How many templates a benchmark builds: ``BENCH_TEMPLATES``, else ``default``."""
    raw = os.environ.get("BENCH_TEMPLATES", "").replace("_", "").replace(",", "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"BENCH_TEMPLATES={raw!r}: give a whole number of templates, like 10000")
    return int(raw)
