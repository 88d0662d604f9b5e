"""A BENCH_TEMPLATES-sized MLflow store for bench.sync, made from the 1,000-template one in
seconds instead of an hour: its registered models, versions, tags and aliases copied under
new names, straight in MLflow's SQLite tables (the registration runs are shared).

Run: BENCH_TEMPLATES=10000 python -m bench.scale_store (after python -m bench.sync has made
var/bench/sync-1000x10-mlflow.db). Copy k of template ``.../template-N`` is
``.../template-kK-N``; content hashes cover text and metadata only, so every copy verifies.
Writing MLflow's tables directly is for this benchmark fixture only: nothing else does it.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from bench.size import templates

BASE = Path("var/bench/sync-1000x10-mlflow.db")
NAMED = {
    "registered_models": "name",
    "model_versions": "name",
    "registered_model_tags": "name",
    "model_version_tags": "name",
    "registered_model_aliases": "name",
}


def main() -> None:
    wanted = templates(10_000)
    if wanted % 1000:
        raise SystemExit("BENCH_TEMPLATES must be a multiple of 1000 here")
    target = Path(f"var/bench/sync-{wanted}x10-mlflow.db")
    partial = target.with_suffix(".partial")
    shutil.copy(BASE, partial)
    db = sqlite3.connect(partial)
    for k in range(1, wanted // 1000):
        for table, column in NAMED.items():
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            chosen = ", ".join(
                f"replace({c}, '.template-', '.template-k{k}-')"
                # A version's source names the registered model it was written into
                # (runs:/<run>/prompts/<name>/...): the copy's must name the copy, or the
                # mirror takes it for a model renamed outside registry_ui.
                if c == column or (table == "model_versions" and c == "source")
                else c
                for c in columns
            )
            if table == "registered_model_tags" or table == "model_version_tags":
                chosen = chosen.replace(
                    "value",
                    f"CASE WHEN key = 'registry_ui.template_name' THEN "
                    f"replace(value, '/template-', '/template-k{k}-') ELSE value END",
                )
            db.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {chosen} FROM {table} "
                "WHERE name NOT LIKE '%.template-k%'"
            )
        db.commit()
        print(f"  copy {k}: {(k + 1) * 1000} templates", flush=True)
    db.execute("VACUUM")
    db.close()
    partial.rename(target)
    print(f"{target}: {wanted} templates x 10 versions")


if __name__ == "__main__":
    main()
