"""Which MLflow registry changes move which timestamps (issue 20), measured, not assumed.

Run: ``python -m bench.timestamps`` (a throwaway SQLite store; ``MLFLOW_TRACKING_URI`` to
measure a server instead). For each kind of change it reads the registered model's and every
version's ``last_updated_timestamp`` before and after and prints a Markdown table: the facts
docs/mlflow-contract.md records and the incremental sync builds on.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings

from mlflow.tracking import MlflowClient


def _stamps(client: MlflowClient, name: str) -> dict[str, int]:
    model = client.get_registered_model(name)
    found = {"model": model.last_updated_timestamp}
    for version in client.search_model_versions(f"name = '{name}'"):
        found[f"v{version.version}"] = version.last_updated_timestamp
    return found


def measure(client: MlflowClient) -> list[tuple[str, str, str]]:
    name = f"timestamps-{int(time.time() * 1000)}"
    client.create_registered_model(name)
    # A server accepts only a source inside a run (docs/mlflow-contract.md).
    run = client.create_run(client.create_experiment(name)).info.run_id
    source = f"runs:/{run}/prompt"
    for _ in range(3):
        client.create_model_version(name, source=source, run_id=run, tags={"k": "v"})
    client.set_registered_model_alias(name, "production", "1")
    client.set_registered_model_tag(name, "t", "1")
    changes = [
        (
            "new version (create_model_version)",
            lambda: client.create_model_version(name, source, run_id=run),
        ),
        (
            "alias set (set_registered_model_alias)",
            lambda: client.set_registered_model_alias(name, "staging", "2"),
        ),
        (
            "alias moved to another version",
            lambda: client.set_registered_model_alias(name, "production", "2"),
        ),
        ("alias deleted", lambda: client.delete_registered_model_alias(name, "staging")),
        ("model tag set", lambda: client.set_registered_model_tag(name, "t", "2")),
        ("model tag deleted", lambda: client.delete_registered_model_tag(name, "t")),
        ("version tag set (v2)", lambda: client.set_model_version_tag(name, "2", "k", "edited")),
        ("version tag deleted (v2)", lambda: client.delete_model_version_tag(name, "2", "k")),
        (
            "legacy stage (v2 to Staging)",
            lambda: client.transition_model_version_stage(name, "2", "Staging"),
        ),
        (
            "version description (v2)",
            lambda: client.update_model_version(name, "2", description="d"),
        ),
        ("model description", lambda: client.update_registered_model(name, description="d")),
        ("version deleted (v3)", lambda: client.delete_model_version(name, "3")),
    ]
    rows = []
    for label, change in changes:
        before = _stamps(client, name)
        time.sleep(0.05)  # timestamps are milliseconds: a move is then always visible
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            change()
        after = _stamps(client, name)
        model = "moves" if after["model"] != before["model"] else "no"
        moved = sorted(k for k in after if k != "model" and after[k] != before.get(k))
        gone = sorted(k for k in before if k not in after)
        versions = ", ".join(moved) if moved else "none"
        if gone:
            versions += f" (gone from search: {', '.join(gone)})"
        rows.append((label, model, versions))
    client.delete_registered_model(name)
    return rows


def main() -> None:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory() as tmp:
        uri = uri or f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        import mlflow

        print(f"MLflow {mlflow.__version__}, store {uri.split(':')[0]}")
        print("| change | model's last_updated_timestamp | versions' last_updated_timestamp |")
        print("|---|---|---|")
        for label, model, versions in measure(client):
            print(f"| {label} | {model} | {versions} |")


if __name__ == "__main__":
    main()
