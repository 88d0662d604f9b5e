"""Real Celery worker processes for tests, on the Redis at REDIS_URL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url_of_test_database() -> str:
    """The URL of the database pytest-django created, for processes the tests start."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"


class WorkerProcess:
    """One `celery worker` (a main process and its pool) in a process group of its own.

    ``extra_env`` is laid over this process's environment (e.g. a short
    OPERATION_TIME_LIMIT_SECONDS); ``duplicate_sends`` starts it through
    tests.support.duplicating_worker, so every operation it sends goes out twice.
    """

    def __init__(
        self,
        *,
        queue: str,
        mlflow_uri: str,
        log_path: Path,
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
        duplicate_sends: bool = False,
    ):
        self.queue = queue
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_database(),
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "CELERY_QUEUE": queue,
            **(extra_env or {}),
        }
        entry = "tests.support.duplicating_worker" if duplicate_sends else "celery"
        self.command = [
            sys.executable, "-m", entry, "-A", "registry_ui.celery", "worker",
            "--loglevel=INFO", f"--concurrency={concurrency}", "-Q", queue,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        # A restarted worker appends to the same log: only what this start writes counts.
        self._started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_for_log("ready.", timeout=60)
        return self

    def _wait_for_log(self, text: str, timeout: float) -> None:
        """Wait for ``text`` anywhere in what this start logged: a worker that starts on a
        full queue can log pages of tasks within one poll, past any fixed tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log()}")
            with open(self.log_path, "rb") as log:
                log.seek(self._started_at)
                if text.encode() in log.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log()}")

    def log(self, tail: int | None = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:] if tail else text

    def task_results(self, task: str = "run_operation") -> list[str]:
        """What each finished task of this name returned, in order (from the INFO log)."""
        pattern = re.compile(rf"Task [\w.]*\.{task}\[[^\]]+\] succeeded in [\d.]+s: '(\w+)'")
        return pattern.findall(self.log(tail=None))

    def received(self, task: str = "run_operation") -> int:
        """How many messages of this task the worker took from the broker."""
        return len(re.findall(rf"Task [\w.]*\.{task}\[[^\]]+\] received", self.log(tail=None)))

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and its pool children."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition, *, timeout: float, interval: float = 0.25, message="") -> None:
    """Poll ``condition``; ``message`` (a string, or a callable read at the timeout) says what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    what = message() if callable(message) else message
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
