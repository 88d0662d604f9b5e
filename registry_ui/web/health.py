"""GET /healthz: the database for anyone; with ?deep=1, MLflow too, for staff or a token.

The shallow check is open: load balancers and container healthchecks probe it. The deep one
costs a registry call and describes MLflow's failure, so it answers only a signed-in staff
user or a caller sending ``Authorization: Bearer <HEALTHZ_TOKEN>`` (a monitoring system).
Whatever it shows or logs about a failure goes through registry_ui.core.redact first: MLflow's
address may carry a password (``http://svc:password@mlflow:5000``), and its errors quote it.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry_ui.core.errors import RegistryError
from registry_ui.core.redact import redact_error
from registry_ui.prompt_model import get_registry

logger = logging.getLogger("registry_ui")

DEEP_REFUSED = (
    "deep health checks need a staff sign-in or the health token "
    "(Authorization: Bearer <HEALTHZ_TOKEN>); /healthz without deep=1 is open"
)


@login_not_required  # probed by load balancers and container healthchecks
@never_cache
@require_GET
def healthz(request):
    """The database always; MLflow only with ?deep=1 (it costs a registry call)."""
    checks = {"database": _check_database()}
    if request.GET.get("deep") in ("1", "true", "yes"):
        if not _may_check_deeply(request):
            return JsonResponse({"error": DEEP_REFUSED}, status=403)
        checks["mlflow"] = _check_mlflow()
    healthy = all(check == "ok" for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _may_check_deeply(request) -> bool:
    if request.user.is_active and request.user.is_staff:
        return True
    token = settings.HEALTHZ_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any database failure makes the service unhealthy
        logger.warning("health check: database failed: %s", redact_error(error))
        return f"error: {type(error).__name__}"
    return "ok"


def _check_mlflow() -> str:
    try:
        get_registry().gateway.ping()
    except RegistryError as error:
        shown = redact_error(error)
        logger.warning("health check: MLflow failed: %s", shown)
        return f"error: {shown}"
    return "ok"
