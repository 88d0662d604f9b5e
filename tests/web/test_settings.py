"""Start-up refuses malformed configuration with a message naming the variable."""

import os
import subprocess
import sys

import pytest


def start_django(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "mongodb://127.0.0.1/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:port/0"}, "REDIS_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "false", "SECRET_KEY": ""}, "SECRET_KEY is required when DEBUG is off"),
        ({"REGISTRY_UI_CACHE_TTL": "soon"}, "REGISTRY_UI_CACHE_TTL"),
        ({"MLFLOW_TRACKING_URI": "ftp://example/x"}, "MLFLOW_TRACKING_URI"),
    ],
)
def test_it_stops_start_up_naming_the_malformed_variable(env, named):
    result = start_django(**env)

    assert result.returncode != 0
    assert named in result.stderr


def test_it_starts_on_the_embedded_defaults(tmp_path):
    result = start_django(REGISTRY_UI_VAR_DIR=str(tmp_path), MLFLOW_TRACKING_URI="")

    assert result.returncode == 0, result.stderr
    assert "REDIS_URL is unset: background tasks run in-process" in result.stderr
