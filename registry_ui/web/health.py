"""GET /healthz: the database, and with ?deep=1 MLflow too."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry_ui.core.errors import RegistryError
from registry_ui.prompt_model import get_registry

logger = logging.getLogger("registry_ui")


@login_not_required  # probed by load balancers and container healthchecks
@never_cache
@require_GET
def healthz(request):
    """The database always; MLflow only with ?deep=1 (it costs a registry call)."""
    checks = {"database": _check_database()}
    if request.GET.get("deep") in ("1", "true", "yes"):
        checks["mlflow"] = _check_mlflow()
    healthy = all(check == "ok" for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any database failure makes the service unhealthy
        logger.warning("health check: database failed: %s", error)
        return f"error: {type(error).__name__}"
    return "ok"


def _check_mlflow() -> str:
    try:
        get_registry().gateway.ping()
    except RegistryError as error:
        logger.warning("health check: MLflow failed: %s", error)
        return f"error: {error}"
    return "ok"
