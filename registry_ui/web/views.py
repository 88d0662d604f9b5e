from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required, login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry_ui.core.errors import RegistryError
from registry_ui.web import selectors
from registry_ui.web.models import Stage

logger = logging.getLogger("registry_ui")


@login_required
@require_GET
def template_list(request):
    """Templates from the mirror: search, filters, folders and pages; an htmx request (search
    as you type) gets only the results fragment."""
    filters, errors = _template_filters(request.GET)
    if errors:
        page, rows = None, []
    else:
        page, rows = selectors.template_list(filters, request.GET.get("page"))
    query = filters.query()
    context = {
        "page": page,
        "rows": rows,
        "filters": filters,
        "errors": errors,
        "query": urlencode(query),
        "filtered": bool(set(query) - {"folder"}),
        "stages": Stage.choices,
        "authors": selectors.authors(),
        "folder_crumbs": selectors.folder_crumbs(filters.folder),
        "subfolders": selectors.subfolders(filters.folder) if not errors else [],
    }
    template = "registry_ui/template_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#template-results"
    return render(request, template, context, status=400 if errors else 200)


def _template_filters(query) -> tuple[selectors.TemplateFilters, dict[str, str]]:
    values = {
        key: query.get(key, "").strip()[:200] for key in ("q", "stage", "author", "tag", "folder")
    }
    values["folder"] = values["folder"].strip("/")
    errors = {}
    if values["stage"] and values["stage"] not in Stage.values:
        errors["stage"] = f"stage {values['stage'][:40]!r} is not one of: " + ", ".join(
            Stage.values
        )
    if values["tag"] and not selectors.TAG.fullmatch(values["tag"]):
        errors["tag"] = (
            "a tag is up to 60 letters, digits, spaces and '.', ':', '-' or '_', e.g. 'onboarding'"
        )
    return selectors.TemplateFilters(**values), errors


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
    from registry_ui.prompt_model import get_registry

    try:
        get_registry().gateway.ping()
    except RegistryError as error:
        logger.warning("health check: MLflow failed: %s", error)
        return f"error: {error}"
    return "ok"
