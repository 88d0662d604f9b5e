"""One settings module, driven by environment variables with working local defaults.

Every variable is listed in .env.example. A malformed value stops start-up with a
message naming the variable (ImproperlyConfigured).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from registry_ui import config

BASE_DIR = config.BASE_DIR
VAR_DIR = config.VAR_DIR


def _env_bool(name: str, default: bool) -> bool:
    try:
        return config.env_bool(name, default)
    except config.ConfigurationError as error:
        raise ImproperlyConfigured(str(error)) from None


def _database_url() -> dict:
    raw = os.environ.get("DATABASE_URL", "").strip()
    if not raw:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        raw = f"sqlite:///{VAR_DIR / 'registry_ui.sqlite3'}"
    try:
        parsed = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except (ValueError, KeyError) as error:
        raise ImproperlyConfigured(
            f"DATABASE_URL={raw!r} is not a database URL ({error}): use e.g. "
            "postgres://user@127.0.0.1:5432/registry_ui or sqlite:///var/registry_ui.sqlite3"
        ) from None
    if parsed.get("ENGINE") not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        raise ImproperlyConfigured(
            f"DATABASE_URL={raw!r}: only postgres:// and sqlite:// databases are supported"
        )
    if parsed["ENGINE"].endswith("sqlite3"):
        parsed["CONN_MAX_AGE"] = 0
        parsed["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        # A file, not memory, so Celery worker processes started by tests share it.
        parsed["TEST"] = {"NAME": str(VAR_DIR / "test-registry_ui.sqlite3")}
    return parsed


def _redis_url() -> str | None:
    raw = os.environ.get("REDIS_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ImproperlyConfigured(
            f"REDIS_URL={raw!r} is not a Redis URL: use e.g. redis://127.0.0.1:6379/0"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(f"REDIS_URL={raw!r} has a port that is not a number") from None
    return raw


def _mlflow_tracking_uri() -> str:
    uri = config.mlflow_tracking_uri()
    scheme = urlsplit(uri).scheme
    if scheme not in ("http", "https", "sqlite", "postgresql", "mysql", "file", ""):
        raise ImproperlyConfigured(
            f"MLFLOW_TRACKING_URI={uri!r}: use an http(s):// MLflow server or a database URI "
            "such as sqlite:///var/mlflow.db"
        )
    return uri


DEBUG = _env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key-only-used-when-DEBUG-is-on"
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

DATABASES = {"default": _database_url()}
REDIS_URL = _redis_url()
MLFLOW_TRACKING_URI = _mlflow_tracking_uri()
try:
    REGISTRY_CACHE_TTL = config.cache_ttl_seconds()
except config.ConfigurationError as error:
    raise ImproperlyConfigured(str(error)) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "registry_ui.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files under gunicorn (no separate web server in the image).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "registry_ui.urls"
WSGI_APPLICATION = "registry_ui.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "template_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
WHITENOISE_USE_FINDERS = DEBUG  # serve straight from static/ in development
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = _env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Celery: with REDIS_URL unset, tasks run in-process (eagerly) and start-up logs say so.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "registry_ui").strip() or "registry_ui"

# An operation running longer than this is stuck: the sweeper gives it back. It must stay
# below the Redis visibility timeout, or Redis would redeliver a task still running.
OPERATION_TIME_LIMIT_SECONDS = config.env_int("OPERATION_TIME_LIMIT_SECONDS", 300, minimum=10)
# A pending operation older than this was probably never sent: the sweeper sends it.
OPERATION_SEND_GRACE_SECONDS = config.env_int("OPERATION_SEND_GRACE_SECONDS", 30, minimum=1)
OPERATION_MAX_RETRIES = 8
REDIS_VISIBILITY_TIMEOUT_SECONDS = 3 * OPERATION_TIME_LIMIT_SECONDS
# One value, read by the broker and the result backend alike (Celery reads them separately).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS}
CELERY_TASK_TIME_LIMIT = OPERATION_TIME_LIMIT_SECONDS
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "sweep-operations": {"task": "registry_ui.web.tasks.sweep_operations", "schedule": 15.0},
    "sync-registry": {
        "task": "registry_ui.web.tasks.sync_registry_task",
        "schedule": float(config.env_int("SYNC_INTERVAL_SECONDS", 300, minimum=10)),
    },
}
# Shared with MLflow's webhook (create_webhook(..., secret=...)); unset: webhooks refused.
MLFLOW_WEBHOOK_SECRET = os.environ.get("MLFLOW_WEBHOOK_SECRET", "").strip()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "registry_ui": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}
