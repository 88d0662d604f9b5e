"""Run the registry-ui command as a subprocess, as a CI runner would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Started with -I (no environment, no user site, no current directory on the path), with
# Django and MLflow made unimportable: validate and test must need neither.
BLOCKER = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("django", "mlflow", "celery", "ninja"):
            raise ModuleNotFoundError(f"{name} is not importable here", name=name)
sys.meta_path.insert(0, Blocked())
"""
WITHOUT_DJANGO = (
    BLOCKER
    + """
sys.path.insert(0, %r)
from registry_ui.cli import main
code = main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"django", "mlflow", "celery"})
assert not loaded, loaded
sys.exit(code)
"""
)


class Result:
    def __init__(self, completed: subprocess.CompletedProcess):
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"exit {self.code}\n{self.out}\n{self.err}"


def run_cli(*args: str, env: dict | None = None, cwd=None, isolated=False) -> Result:
    if isolated:
        command = [sys.executable, "-I", "-c", WITHOUT_DJANGO % str(ROOT), *args]
    else:
        command = [sys.executable, "-m", "registry_ui.cli", *args]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in ("REGISTRY_UI_URL", "REGISTRY_UI_TOKEN"):
        if env is None or name not in env:
            environment.pop(name, None)
    completed = subprocess.run(
        command, capture_output=True, text=True, env=environment, cwd=cwd or ROOT, timeout=600
    )
    return Result(completed)


@pytest.fixture
def cli():
    return run_cli


# The cast and Celery of the web tests, and the API tests' service account.
from tests.web.api.conftest import ci_bot  # noqa: E402, F401
from tests.web.conftest import alice, bob, carol, erin, in_process_tasks, root  # noqa: E402, F401
