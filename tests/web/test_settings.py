"""Start-up refuses malformed configuration with a message naming the variable."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SETTINGS = ROOT / "registry_ui" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
STOPPED = "django.core.exceptions.ImproperlyConfigured: "


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
        # Once read straight through config.env_int, which stopped start-up with its own
        # ConfigurationError instead.
        ({"OPERATION_TIME_LIMIT_SECONDS": "abc"}, "OPERATION_TIME_LIMIT_SECONDS='abc'"),
        ({"OPERATION_SEND_GRACE_SECONDS": "0"}, "OPERATION_SEND_GRACE_SECONDS='0'"),
        ({"SYNC_INTERVAL_SECONDS": "1"}, "SYNC_INTERVAL_SECONDS='1'"),
        ({"SYNC_FULL_SWEEP_SECONDS": "30"}, "SYNC_FULL_SWEEP_SECONDS='30'"),
        ({"EXPERIMENT_LOG_INTERVAL_SECONDS": "0"}, "EXPERIMENT_LOG_INTERVAL_SECONDS='0'"),
        ({"APPROVALS_PRODUCTION": "0"}, "APPROVALS_PRODUCTION='0'"),
        ({"GATE_MIN_SAMPLES": "lots"}, "GATE_MIN_SAMPLES='lots'"),
        ({"REGISTRY_UI_REQUIRED_METADATA": "author:colour"}, "REGISTRY_UI_REQUIRED_METADATA="),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose'"),
        ({"REGISTRY_UI_AUTHOR_ALIASES": '{"Robert": "bob'}, "REGISTRY_UI_AUTHOR_ALIASES"),
        ({"REGISTRY_UI_AUTHOR_ALIASES": '{"bob,carol": "bob"}'}, "REGISTRY_UI_AUTHOR_ALIASES"),
        ({"CLIENT_IP_HEADER": "X Real IP"}, "CLIENT_IP_HEADER='X Real IP'"),
        ({"SITE_URL": "ftp://example"}, "SITE_URL='ftp://example'"),
        ({"EMAIL_PORT": "0"}, "EMAIL_PORT='0'"),
        (
            {"DEBUG": "false", "SECRET_KEY": "x", "SECURE_HSTS_SECONDS": "a year"},
            "SECURE_HSTS_SECONDS='a year'",
        ),
    ],
)
def test_it_stops_start_up_naming_the_malformed_variable(env, named):
    result = start_django(**env)

    assert result.returncode != 0
    stopped = [line for line in result.stderr.splitlines() if line.startswith(STOPPED)]
    assert stopped, result.stderr
    assert named in stopped[-1]


def test_it_starts_on_the_embedded_defaults(tmp_path):
    result = start_django(REGISTRY_UI_VAR_DIR=str(tmp_path), MLFLOW_TRACKING_URI="")

    assert result.returncode == 0, result.stderr
    assert "REDIS_URL is unset: background tasks run in-process" in result.stderr


# -- every variable through one helper, each in .env.example ---------------------------------
# Read before settings.py, by registry_ui.config (REGISTRY_UI_VAR_DIR) or by MLflow itself
# (registry_ui.gateway only sets defaults for them).
READ_ELSEWHERE = {
    "REGISTRY_UI_VAR_DIR",
    # Read by registry_ui.core.limits (the core reads no Django settings).
    "REGISTRY_UI_MAX_FORMAT_WIDTH",
    "REGISTRY_UI_MAX_FORMAT_PRECISION",
    "REGISTRY_UI_MAX_RENDERED_LENGTH",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
}
# What settings.py may take from registry_ui.config outside an _env call (VAR_DIR is
# config's own read of REGISTRY_UI_VAR_DIR, above).
CONFIG_CONSTANTS = {"BASE_DIR", "VAR_DIR", "ConfigurationError"}


def is_env_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id == "_env" or node.func.id.startswith("_env_"))
    )


def reads_environment(node: ast.AST, readers: set[str]) -> bool:
    """os.environ, anything of config's but its constants, or one of settings.py's readers."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id == "os":
            return node.attr in ("environ", "getenv")
        if node.value.id == "config":
            return node.attr not in CONFIG_CONSTANTS
    return isinstance(node, ast.Name) and node.id in readers


def settings_reads() -> tuple[list[str], list[str]]:
    """The variables settings.py's top level names in _env calls, and its other reads."""
    tree = ast.parse(SETTINGS.read_text())
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    readers = {
        function.name
        for function in functions
        if any(reads_environment(node, set()) for node in ast.walk(function))
    }
    names, elsewhere = [], []
    pending = [node for node in tree.body if node not in functions]
    while pending:
        node = pending.pop()
        if is_env_call(node) and isinstance(node.args[0], ast.Constant):
            names.append(node.args[0].value)
        elif reads_environment(node, readers) or is_env_call(node):
            elsewhere.append(ast.unparse(node))
        else:
            pending.extend(ast.iter_child_nodes(node))
    return names, elsewhere


def env_example_variables() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_settings_read_every_variable_once_through_the_env_helpers():
    names, elsewhere = settings_reads()

    assert elsewhere == []
    assert len(names) > 30  # the parse found the reads at all
    assert sorted(name for name in set(names) if names.count(name) > 1) == []


def test_env_example_lists_every_variable_settings_read_and_no_other():
    names, _ = settings_reads()

    assert set(names) - env_example_variables() == set()
    assert env_example_variables() - set(names) == READ_ELSEWHERE
