"""Start a real `mlflow server` on a free loopback port (tests and benchmarks share it).

``enable_jobs=False`` switches off MLflow's job runner (huey consumer processes polling the
store, for GenAI jobs). registry_ui never uses it, and on a small machine it more than
doubles the start-up time (about 35 s against 15 s) and slows every registry request
several times over (about 120 ms against 20 ms for a search), so the tests turn it off.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# uvicorn worker processes of every `mlflow server` started here, as in docker-compose.yml
# (tests/test_deployment_files.py keeps the two equal).
SERVER_WORKERS = 2
# On the server's PYTHONPATH, as in the mlflow image: with more than one worker, uvicorn
# leaves Nagle's algorithm on without it (docker/mlflow-site/sitecustomize.py says why).
MLFLOW_SITE = Path(__file__).resolve().parents[2] / "docker" / "mlflow-site"


def bench_server(root: Path) -> MlflowServer:
    """The server the benchmarks use: like docker-compose.yml's (SERVER_WORKERS uvicorn
    workers with MLFLOW_SITE, no job runner) but on a SQLite store; BENCH_MLFLOW_JOBS=on keeps
    MLflow's default job runner."""
    jobs = os.environ.get("BENCH_MLFLOW_JOBS", "off").strip().lower() in ("on", "1", "true")
    return MlflowServer(root, free_port(), enable_jobs=jobs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MlflowServer:
    root: Path
    port: int
    process: subprocess.Popen | None = None
    enable_jobs: bool = True  # MLflow's default; the tests' servers turn it off
    extra_env: dict[str, str] | None = None
    # "basic-auth": MLflow's built-in authentication (tests/test_mlflow_auth.py); its ini
    # goes in extra_env as MLFLOW_AUTH_CONFIG_PATH. None: no app, as before.
    app_name: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--workers", str(SERVER_WORKERS),
        ]  # fmt: skip
        if self.app_name:
            command += ["--app-name", self.app_name]
        return command

    def start(self, timeout: float = 120.0) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(MLFLOW_SITE), os.environ.get("PYTHONPATH")])
        )
        if not self.enable_jobs:
            env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.update(self.extra_env or {})
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process keeps it open
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so stop() can end uvicorn's worker processes too
            env=env,
        )
        self.wait_until_healthy(timeout)
        return self

    def wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {self.process.returncode}; log:\n"
                    + self.log_path.read_text()[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"mlflow server not healthy after {timeout:.0f}s; log:\n"
            + self.log_path.read_text()[-3000:]
        )

    def kill(self) -> None:
        """Stop at once: SIGKILL to the server's processes, cutting off requests in flight."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
