"""One settings module, driven by environment variables with working local defaults.

Every variable is listed in .env.example. A malformed value stops start-up with a
message naming the variable (ImproperlyConfigured).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from registry_ui import config

BASE_DIR = config.BASE_DIR
VAR_DIR = config.VAR_DIR

# Not all upper-case, or Django would take it for a setting.
_Value = TypeVar("_Value")


def _env(name: str, read: Callable[[str], _Value]) -> _Value:
    """The one way this module reads a variable: `read(name)` returns its setting.

    A reader raises config.ConfigurationError naming the variable, the value given and what
    is accepted; start-up then stops on that message. Read each variable once, into a
    setting: tests/web/test_settings.py takes the names passed here (and to the _env_*
    helpers) as the list of variables .env.example must describe.
    """
    try:
        return read(name)
    except config.ConfigurationError as error:
        raise ImproperlyConfigured(str(error)) from None


def _env_str(name: str, default: str = "") -> str:
    return _env(name, partial(config.env_str, default=default))


def _env_bool(name: str, default: bool) -> bool:
    return _env(name, partial(config.env_bool, default=default))


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    return _env(name, partial(config.env_int, default=default, minimum=minimum))


def _env_http_url(name: str, default: str = "") -> str:
    return _env(name, partial(_http_url, default=default))


def _shared_with_library(read: Callable[[], _Value]) -> Callable[[str], _Value]:
    """A reader for a variable the library reads too: config parses it, so both agree."""
    return lambda _name: read()


# -- readers: each takes the variable's name and raises config.ConfigurationError ----------
def _host_names(name: str) -> list[str]:
    # Set but empty gives no host, as it always has (DEBUG then answers localhost only), where
    # config.env_str would give the default.
    raw = os.environ.get(name, "127.0.0.1,localhost")
    return [host.strip() for host in raw.split(",") if host.strip()]


def _password(name: str) -> str:
    # Not stripped: spaces at either end may belong to the password.
    return os.environ.get(name, "")


def _log_level(name: str) -> str:
    # Exactly the names logging.config accepts (case and spaces count), checked here so a
    # wrong one is named at start-up instead of failing later as "Unable to configure logger".
    raw = os.environ.get(name, "INFO")
    if raw not in logging.getLevelNamesMapping():
        raise config.ConfigurationError(
            f"{name}={raw!r} is not a logging level: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return raw


def _client_ip_header(name: str) -> str:
    raw = config.env_str(name)
    if raw and not re.fullmatch(r"[A-Za-z0-9-]+", raw):
        raise config.ConfigurationError(
            f"{name}={raw!r} is not an HTTP header name: use e.g. X-Real-IP, or leave "
            "it empty to use the address of the connection (REMOTE_ADDR)"
        )
    return raw


def _database(name: str) -> dict:
    raw = config.env_str(name)
    if not raw:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        raw = f"sqlite:///{VAR_DIR / 'registry_ui.sqlite3'}"
    try:
        parsed = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except (ValueError, KeyError) as error:
        raise config.ConfigurationError(
            f"{name}={raw!r} is not a database URL ({error}): use e.g. "
            "postgres://user@127.0.0.1:5432/registry_ui or sqlite:///var/registry_ui.sqlite3"
        ) from None
    if parsed.get("ENGINE") not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        raise config.ConfigurationError(
            f"{name}={raw!r}: only postgres:// and sqlite:// databases are supported"
        )
    if parsed["ENGINE"].endswith("sqlite3"):
        parsed["CONN_MAX_AGE"] = 0
        parsed["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        # A file, not memory, so Celery worker processes started by tests share it.
        parsed["TEST"] = {"NAME": str(VAR_DIR / "test-registry_ui.sqlite3")}
    return parsed


def _redis_url(name: str) -> str | None:
    raw = config.env_str(name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise config.ConfigurationError(
            f"{name}={raw!r} is not a Redis URL: use e.g. redis://127.0.0.1:6379/0"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise config.ConfigurationError(
            f"{name}={raw!r} has a port that is not a number: use e.g. redis://127.0.0.1:6379/0"
        ) from None
    return raw


def _mlflow_tracking_uri(name: str) -> str:
    # config reads it (the library does too), so both agree on where the registry is.
    uri = config.mlflow_tracking_uri()
    scheme = urlsplit(uri).scheme
    if scheme not in ("http", "https", "sqlite", "postgresql", "mysql", "file", ""):
        raise config.ConfigurationError(
            f"{name}={uri!r}: use an http(s):// MLflow server or a database URI "
            "such as sqlite:///var/mlflow.db"
        )
    return uri


def _http_url(name: str, default: str = "") -> str:
    raw = config.env_str(name, default)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise config.ConfigurationError(
            f"{name}={raw!r} is not an http(s) URL: use e.g. https://registry.example.com"
        )
    return raw.rstrip("/")


DEBUG = _env_bool("DEBUG", True)
SECRET_KEY = _env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key-only-used-when-DEBUG-is-on"
ALLOWED_HOSTS = _env("ALLOWED_HOSTS", _host_names)

DATABASES = {"default": _env("DATABASE_URL", _database)}
REDIS_URL = _env("REDIS_URL", _redis_url)
MLFLOW_TRACKING_URI = _env("MLFLOW_TRACKING_URI", _mlflow_tracking_uri)
REGISTRY_CACHE_TTL = _env("REGISTRY_UI_CACHE_TTL", _shared_with_library(config.cache_ttl_seconds))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "django_htmx",
    "template_partials",
    "registry_ui.web",
]

MIDDLEWARE = [
    # Outermost, so static files and redirects get Permissions-Policy too.
    "registry_ui.web.headers.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files under gunicorn (no separate web server in the image).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a signed-in user unless marked @login_not_required (healthz, webhooks).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Names the signed-in user in the audit events of changes to users, groups and permissions.
    "registry_ui.web.auth.changes.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
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
                "registry_ui.web.reviews.inbox.review_inbox",
            ],
        },
    },
]

# Checked wherever a password is set through a form: the password-change page, the admin,
# createsuperuser and changepassword.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "template_list"
LOGOUT_REDIRECT_URL = "login"
# Refuses sign-ins while throttled on every sign-in page (the admin's too), before the password.
AUTHENTICATION_BACKENDS = ["registry_ui.web.auth.ThrottledModelBackend"]
# After this many failed sign-ins for one username from one client address within the window
# (counted from the first failure), sign-in answers 429 until the window ends. The limits per
# username from anywhere and per address for any username are higher (at the end).
LOGIN_FAILURE_LIMIT = _env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = _env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
# A header your proxy sets to the client's address (e.g. X-Real-IP); empty: REMOTE_ADDR.
# Never a header clients can set themselves, or they choose the address they are counted as.
CLIENT_IP_HEADER = _env("CLIENT_IP_HEADER", _client_ip_header)

# Shared by every gunicorn worker when REDIS_URL is set, so sign-in failures add up across them.
# Never call cache.clear() on it: RedisCache flushes the whole Redis database, Celery's too.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "registry_ui",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

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
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = _env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    # Container healthchecks call http://localhost:8000/healthz without TLS.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = _env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading asks browser vendors to hard-code HTTPS for the whole domain, for months:
        # the domain owner's decision, not a default (docs/deploy.md, "Security settings").
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # Only behind a proxy that sets X-Forwarded-Proto and drops the client's own: otherwise
    # any client could claim HTTPS.
    if _env_bool("TRUST_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# No inline script or style and no eval: base.html turns off htmx's inline indicator style
# and its eval features, and templates use static files only (tests/web/test_security.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# Celery: with REDIS_URL unset, tasks run in-process (eagerly) and start-up logs say so.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = _env_str("CELERY_QUEUE", "registry_ui")

# Celery's hard time limit of an operation's task: the task is killed past it. It must stay
# below the Redis visibility timeout, or Redis would redeliver a task still running.
OPERATION_TIME_LIMIT_SECONDS = _env_int("OPERATION_TIME_LIMIT_SECONDS", 300, minimum=10)
# A running operation's lease: its worker renews it every third of this; the sweeper gives
# back one whose lease ran out (the worker died, hung or lost its database connection).
OPERATION_LEASE_SECONDS = _env_int("OPERATION_LEASE_SECONDS", 20, minimum=3)
# A pending operation older than this was probably never sent: the sweeper sends it.
OPERATION_SEND_GRACE_SECONDS = _env_int("OPERATION_SEND_GRACE_SECONDS", 30, minimum=1)
# Attempts of one operation (counted on its row) before it fails with its last error; the
# pause before attempt n+1 is OPERATION_RETRY_BASE_SECONDS * 2**(n-1), capped, +-20%.
OPERATION_MAX_RETRIES = _env_int("OPERATION_MAX_RETRIES", 8, minimum=1)
OPERATION_RETRY_BASE_SECONDS = _env_int("OPERATION_RETRY_BASE_SECONDS", 5, minimum=1)
OPERATION_RETRY_MAX_SECONDS = _env_int("OPERATION_RETRY_MAX_SECONDS", 300, minimum=1)
# A release rides out MLflow trouble this long (from its first attempt) before it is moved
# back; moving back is then retried until it is done, so no release stays half applied.
RELEASE_RETRY_BUDGET_SECONDS = _env_int("RELEASE_RETRY_BUDGET_SECONDS", 300, minimum=10)
REDIS_VISIBILITY_TIMEOUT_SECONDS = 3 * OPERATION_TIME_LIMIT_SECONDS
# One value, read by the broker and the result backend alike (Celery reads them separately).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS}
CELERY_TASK_TIME_LIMIT = OPERATION_TIME_LIMIT_SECONDS
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Imported by a worker's main process before it forks its pool, so each pool process starts
# with mlflow loaded instead of its first operation importing it (3-4 s here, each).
CELERY_IMPORTS = ["registry_ui.gateway"]
# The incremental sync: reads only templates whose registered model's timestamp moved.
# Idle, a pass is one MLflow call; every 4 s, changes no webhook reports (a legacy stage set
# by hand, a version deleted) show within seconds. Passes never overlap (prompts/tasks.py).
SYNC_INTERVAL_SECONDS = _env_int("SYNC_INTERVAL_SECONDS", 4, minimum=2)
# The full sweep: reads every version, for what moves no MLflow timestamp (aliases and tags
# edited, a model deleted) when no webhook reported it (docs/mlflow-contract.md).
SYNC_FULL_SWEEP_SECONDS = _env_int("SYNC_FULL_SWEEP_SECONDS", 600, minimum=60)
# Outcomes reach MLflow as daily figures per variant, never one call per event; metrics of
# MLflow runs tagged with a template version are imported on the same beat.
EXPERIMENT_LOG_INTERVAL_SECONDS = _env_int("EXPERIMENT_LOG_INTERVAL_SECONDS", 300, minimum=10)
# Staging and production versions deleted (or their model renamed) in MLflow, which sends no
# webhook for that: two MLflow searches this often (0: off, the sync alone sees them).
HOLDER_WATCH_SECONDS = _env_int("HOLDER_WATCH_SECONDS", 4, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "sweep-operations": {"task": "registry_ui.web.tasks.sweep_operations", "schedule": 15.0},
    "sync-registry": {
        "task": "registry_ui.web.tasks.sync_changes_task",
        "schedule": float(SYNC_INTERVAL_SECONDS),
    },
    "sync-registry-full-sweep": {
        "task": "registry_ui.web.tasks.sync_registry_task",
        "schedule": float(SYNC_FULL_SWEEP_SECONDS),
    },
    "log-experiment-metrics": {
        "task": "registry_ui.web.tasks.log_all_experiment_metrics",
        "schedule": float(EXPERIMENT_LOG_INTERVAL_SECONDS),
    },
    "import-run-metrics": {
        "task": "registry_ui.web.tasks.import_run_metrics",
        "schedule": float(EXPERIMENT_LOG_INTERVAL_SECONDS),
    },
    # Metrics logged to a run after it ended: read with every run, as rarely as the sweep.
    "import-run-metrics-full": {
        "task": "registry_ui.web.tasks.import_run_metrics",
        "schedule": float(SYNC_FULL_SWEEP_SECONDS),
        "kwargs": {"full": True},
    },
}
if HOLDER_WATCH_SECONDS:
    CELERY_BEAT_SCHEDULE["watch-stage-holders"] = {
        "task": "registry_ui.web.tasks.watch_stage_holders",
        "schedule": float(HOLDER_WATCH_SECONDS),
    }
# PromptModel.promote_*() in a process of this deployment files a request for review (as the
# account REGISTRY_UI_LIBRARY_USER) instead of moving the stage; false: moves as before.
GOVERN_LIBRARY_PROMOTIONS = _env_bool("GOVERN_LIBRARY_PROMOTIONS", True)
LIBRARY_USER = _env_str("REGISTRY_UI_LIBRARY_USER")
# Shared with MLflow's webhook (create_webhook(..., secret=...)); unset: webhooks refused.
MLFLOW_WEBHOOK_SECRET = _env_str("MLFLOW_WEBHOOK_SECRET")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Exception texts quote URLs, and URLs may hold passwords: masked before any line is written.
    "filters": {"redact": {"()": "registry_ui.core.redact.RedactingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "loggers": {
        "registry_ui": {"handlers": ["console"], "level": _env("LOG_LEVEL", _log_level)},
    },
}

# -- review and approval (registry_ui.core.policy) -------------------------------------------
APPROVALS_REQUIRED = {
    # Distinct reviewers needed, neither the requester nor the version's author.
    "staging": _env_int("APPROVALS_STAGING", 1, minimum=1),
    "production": _env_int("APPROVALS_PRODUCTION", 2, minimum=1),
    # 0: a reviewer's rollback runs at once (an emergency brake without a second pair).
    "rollback": _env_int("APPROVALS_ROLLBACK", 1, minimum=0),
}
# The metric gate needs at least this many samples before it passes or fails.
GATE_MIN_SAMPLES = _env_int("GATE_MIN_SAMPLES", 100, minimum=1)


def _author_aliases(name: str) -> dict[str, str]:
    from registry_ui.core.authors import AuthorError, parse_aliases

    try:
        return parse_aliases(os.environ.get(name, "").strip())
    except AuthorError as error:
        raise config.ConfigurationError(f"{name}: {error}") from None


# Names written as a version's metadata author that stand for an account (docs/security.md,
# "Authorship"): {"Robert": "bob"}. A name that is no username and no alias is refused.
AUTHOR_ALIASES = _env("REGISTRY_UI_AUTHOR_ALIASES", _author_aliases)


# -- notifications (registry_ui.web.reviews.notifications) ----------------------------------
# Where the dashboard is reached, for links in emails and webhooks.
SITE_URL = _env_http_url("SITE_URL", "http://127.0.0.1:8000")

# Email through Django's backend: in development, written to a file (EMAIL_FILE_PATH, one
# readable message after another, registry_ui/web/management/outbox.py); SMTP otherwise.
EMAIL_BACKEND = _env_str(
    "EMAIL_BACKEND",
    "registry_ui.web.management.outbox.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = _env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail" / "outbox.txt"))
EMAIL_HOST = _env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = _env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = _env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = _env("EMAIL_HOST_PASSWORD", _password)
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
# Without it, an SMTP server that stops answering holds a worker forever.
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = _env_str("DEFAULT_FROM_EMAIL", "registry_ui@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# An outgoing webhook for chat tools: every request event, signed with HMAC-SHA256.
NOTIFY_WEBHOOK_URL = _env_http_url("NOTIFY_WEBHOOK_URL")
NOTIFY_WEBHOOK_SECRET = _env_str("NOTIFY_WEBHOOK_SECRET")
if NOTIFY_WEBHOOK_URL and not NOTIFY_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        "NOTIFY_WEBHOOK_SECRET is required when NOTIFY_WEBHOOK_URL is set: receivers check "
        'the X-Registry-UI-Signature made with it (e.g. python -c "import secrets; '
        'print(secrets.token_urlsafe(32))")'
    )


# -- checks (registry_ui.core.checks) --------------------------------------------------------
# The metadata every new version must carry. PromptModel reads the same variable through
# registry_ui.config, so library and dashboard agree.
REQUIRED_METADATA = _env(
    "REGISTRY_UI_REQUIRED_METADATA", _shared_with_library(config.required_metadata)
)


# Audit and sign-in security ------------------------------------------------------------------
# (docs/security.md). Every variable here is optional for local development.

# Lets a monitoring system run /healthz?deep=1 (MLflow too) without a staff sign-in: it sends
# "Authorization: Bearer <token>". Empty: only signed-in staff may ask for the deep check.
HEALTHZ_TOKEN = _env_str("HEALTHZ_TOKEN")


def _key_list(name: str) -> list[str]:
    # Comma-separated (keys from secrets.token_urlsafe() hold no comma).
    return [key.strip() for key in os.environ.get(name, "").split(",") if key.strip()]


# The audit chain's HMAC key (registry_ui.web.audit.keys): outside the database, so whoever
# can write the database cannot rewrite the chain and make it check out. Unset with DEBUG on:
# derived from SECRET_KEY for local development. Unset with DEBUG off: the system check
# registry_web.E001 stops migrate and check, and no audit event can be written.
AUDIT_HMAC_KEY = _env_str("AUDIT_HMAC_KEY")
if not AUDIT_HMAC_KEY and DEBUG:
    AUDIT_HMAC_KEY = hmac.new(
        SECRET_KEY.encode(), b"registry_ui audit chain, development only", hashlib.sha256
    ).hexdigest()
# Keys the chain was hashed with before a rotation: verified, never written with.
AUDIT_HMAC_OLD_KEYS = _env("AUDIT_HMAC_OLD_KEYS", _key_list)
# Where the chain's head is appended (one JSON line each time it moved), for verify_audit_log
# to check that no event was removed since. Empty: not published (check --deploy warns).
AUDIT_HEAD_FILE = _env_str("AUDIT_HEAD_FILE")
AUDIT_HEAD_EXPORT_SECONDS = _env_int("AUDIT_HEAD_EXPORT_SECONDS", 300, minimum=10)
CELERY_BEAT_SCHEDULE["publish-audit-head"] = {
    "task": "registry_ui.web.tasks.publish_audit_head",
    "schedule": float(AUDIT_HEAD_EXPORT_SECONDS),
}

# The API keeps the answer to each write sent with an Idempotency-Key this many hours: a
# retry within them gets the first answer; an hourly task forgets older ones.
IDEMPOTENCY_HOURS = _env_int("REGISTRY_UI_IDEMPOTENCY_HOURS", 24, minimum=1)
CELERY_BEAT_SCHEDULE["forget-idempotent-calls"] = {
    "task": "registry_ui.web.tasks.forget_idempotent_calls",
    "schedule": 3600.0,
}

# Sent with every response (registry_ui.web.headers): no page here uses these browser
# features, so no page (or anything injected into one) may.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)

# Sign-in failures (registry_ui.web.auth.signin): besides LOGIN_FAILURE_LIMIT for one username
# from one address, a username is refused everywhere after this many failures from any
# addresses, and an address after this many failures for any usernames (many people may share
# one address behind a proxy or a VPN, so a few typos must not lock them all out).
LOGIN_FAILURE_USERNAME_LIMIT = _env_int("LOGIN_FAILURE_USERNAME_LIMIT", 20, minimum=1)
LOGIN_FAILURE_ADDRESS_LIMIT = _env_int("LOGIN_FAILURE_ADDRESS_LIMIT", 50, minimum=1)


# Input limits (security) ---------------------------------------------------------------------
# How much work what people write may make the server do (registry_ui.core.limits;
# docs/security.md, "Limits on input"). Past a limit, input is refused with a message naming it.
from registry_ui.core.limits import DEFAULT_LIMITS, InputLimits  # noqa: E402 - with its block

# The largest format width and precision and the longest rendered text are read by the core
# itself (REGISTRY_UI_MAX_FORMAT_WIDTH, _PRECISION, _RENDERED_LENGTH): InputLimits' defaults.
INPUT_LIMITS = InputLimits(
    # Steps of work one run of a version's test cases may take (about a second's worth by
    # default): a character rendered or searched is a step, a regular expression's search
    # costs the text's length times its compiled size. Past it, the rest is not run.
    check_steps=_env_int(
        "REGISTRY_UI_CHECK_RUN_STEPS", DEFAULT_LIMITS.check_steps, minimum=1_000_000
    ),
    # Template files (validate_templates, test_templates, register_templates): characters of
    # a file, with its YAML aliases written out too, and the nodes aliases may repeat.
    template_file_size=_env_int(
        "REGISTRY_UI_MAX_TEMPLATE_FILE_SIZE", DEFAULT_LIMITS.template_file_size, minimum=100_000
    ),
    yaml_alias_nodes=_env_int(
        "REGISTRY_UI_MAX_YAML_ALIAS_NODES", DEFAULT_LIMITS.yaml_alias_nodes, minimum=0
    ),
    # Bidirectional controls and invisible characters in template text: always warned about
    # and shown as badges on every page; true refuses them in the editor and the commands.
    refuse_hidden_characters=_env_bool(
        "REGISTRY_UI_REFUSE_HIDDEN_CHARACTERS", DEFAULT_LIMITS.refuse_hidden_characters
    ),
)


# Native prompts (MLflow's Prompt Registry) -------------------------------------------------------
# Which native prompts registry_ui governs besides those adopted with import_prompts: "none",
# "all", "prefix:<P>" or "tag:<key>[=<value>]"; the aliases it governs (moved only through
# requests); whether an alias moved outside registry_ui is moved back (else flagged and
# audited). docs/mlflow-prompts.md.
def _native_governed(name: str) -> str:
    raw = config.env_str(name, default="none").strip()
    kind, _, rest = raw.partition(":")
    if raw in ("none", "all") or (kind == "prefix" and rest):
        return raw
    if kind == "tag" and rest.partition("=")[0]:  # tag:<key> or tag:<key>=<value>
        return raw
    raise config.ConfigurationError(
        f"{name}={raw!r} is not accepted: use none, all, prefix:<name prefix> (e.g. "
        "prefix:support/), tag:<key> or tag:<key>=<value> (e.g. tag:team=support)"
    )


NATIVE_PROMPTS_GOVERNED = _env("REGISTRY_UI_NATIVE_PROMPTS_GOVERNED", _native_governed)
NATIVE_GOVERNED_ALIASES = tuple(
    alias.strip()
    for alias in _env_str("REGISTRY_UI_NATIVE_GOVERNED_ALIASES", "staging,production").split(",")
    if alias.strip()
)
NATIVE_REVERT_OUTSIDE_MOVES = _env_bool("REGISTRY_UI_NATIVE_REVERT_OUTSIDE_MOVES", False)


# Which templates' versions are also published as native prompts ("<registered name>._prompt")
# at each sync, when the mirror sees a new version and after each executed move, the
# staging and production aliases kept in step: "none", "all" or "prefix:<P>"; a template's
# own metadata `publish_native: true` (or false) chooses for it whatever this says.
# docs/mlflow-prompts.md.
def _native_publish(name: str) -> str:
    raw = config.env_str(name, default="none").strip()
    if raw in ("none", "all") or (raw.startswith("prefix:") and len(raw) > len("prefix:")):
        return raw
    raise config.ConfigurationError(
        f"{name}={raw!r} is not accepted: use none, all or prefix:<name prefix> "
        "(e.g. prefix:persona/); a template's metadata publish_native: true chooses for it"
    )


NATIVE_PUBLISH = _env("REGISTRY_UI_NATIVE_PUBLISH", _native_publish)
