"""Configuration shared by the Django app and the Django-free library (no Django, no MLflow).

Both read the same environment variables, so a runtime service using PromptModel and the
dashboard agree on where the registry is without sharing a settings module.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REGISTRY_UI_VAR_DIR") or BASE_DIR / "var")

DEFAULT_CACHE_TTL_SECONDS = 30.0


class ConfigurationError(ValueError):
    """A malformed environment variable; the message names the variable."""


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or a local SQLite store under var/ when it is unset."""
    uri = env_str("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{VAR_DIR / 'mlflow.db'}"


def env_str(name: str, default: str = "") -> str:
    """The variable stripped; unset or empty (as .env.example leaves most), `default`."""
    return os.environ.get(name, "").strip() or default


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name}={raw!r} is not a number: use e.g. {name}={default}"
        ) from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name}={raw!r} is not a whole number: use e.g. {name}={default}"
        ) from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean: use true or false")


def cache_ttl_seconds() -> float:
    return env_float("REGISTRY_UI_CACHE_TTL", DEFAULT_CACHE_TTL_SECONDS)


REQUIRED_METADATA_VARIABLE = "REGISTRY_UI_REQUIRED_METADATA"


def required_metadata():
    """The metadata policy new versions must meet (registry_ui.core.checks.MetadataPolicy).

    REGISTRY_UI_REQUIRED_METADATA: "key:kind,key:kind" or a JSON object of key to kind;
    unset or empty, the design note's four keys; "none", no key is required. Read on each
    call, so a process and its tests see the current value.
    """
    from registry_ui.core.checks import MetadataPolicy

    raw = os.environ.get(REQUIRED_METADATA_VARIABLE, "")
    try:
        return MetadataPolicy.parse(raw)
    except ValueError as error:
        raise ConfigurationError(
            f"{REQUIRED_METADATA_VARIABLE}={raw!r}: {error}; write e.g. "
            f"{REQUIRED_METADATA_VARIABLE}=author:str,purpose:str,tested_on:str_or_list,"
            "performance_metrics:metrics (or none)"
        ) from None
