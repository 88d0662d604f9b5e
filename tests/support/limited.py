"""Run code in a child process with its memory and CPU time capped (setrlimit), so a test of a
memory or time bound runs the real code path and the operating system, not a stopwatch, says
whether it kept within the bound: past RLIMIT_AS an allocation fails with MemoryError, past
RLIMIT_CPU the child is killed by SIGXCPU.

The child prints what the test checks as the last line of its output, as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024

# Django's set-up in a child, on the database the tests use (and signed-in pages on it).
DJANGO_CHILD = """
import json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client


def signed_in(username):
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client
"""


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        """The JSON the child printed last (None if it printed none, e.g. when it was killed)."""
        lines = self.stdout.strip().splitlines()
        try:
            return json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            return None

    @property
    def ran_out(self) -> bool:
        """Whether the child hit a limit: MemoryError, or killed for its CPU time."""
        return "MemoryError" in self.stderr or self.returncode in (-9, -24)  # SIGKILL, SIGXCPU


def run_limited(
    code: str,
    *,
    memory_mb: int,
    cpu_seconds: int = 60,
    django: bool = False,
    env: dict[str, str] | None = None,
) -> ChildRun:
    """Run ``code`` (Python source) in a child with at most memory_mb of address space and
    cpu_seconds of CPU time. With ``django``, Django is set up first (DJANGO_CHILD above) on
    the tests' database, with ``signed_in(username)`` to hand."""
    source = (DJANGO_CHILD if django else "import json\n") + textwrap.dedent(code)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))

    environment = {**os.environ, "ALLOWED_HOSTS": "testserver", **(env or {})}
    if django:
        from tests.support.workers import database_url_of_test_database

        environment["DATABASE_URL"] = database_url_of_test_database()
    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        preexec_fn=limit,  # the child starts no thread before it: preexec_fn is safe here
        timeout=cpu_seconds * 4 + 60,
    )
    return ChildRun(done.returncode, done.stdout, done.stderr)
