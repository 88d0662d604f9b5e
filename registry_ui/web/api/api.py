"""The API object: routers, problem details for every error, the OpenAPI docs page.

The docs page (/api/v1/docs) is Swagger UI served from static/vendor/swagger-ui/, never
from a CDN, under the site's Content-Security-Policy.
"""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import URLPattern, re_path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import DocsBase
from ninja.parser import Parser

from registry_ui.core.limits import loads_json
from registry_ui.core.policy import PolicyError
from registry_ui.web.api import outcomes, read, write  # noqa: F401 - write adds its routes to read.router
from registry_ui.web.api.auth import TokenAuth, unauthorized
from registry_ui.web.api.problems import (
    CONTENT_TYPE,
    ApiProblem,
    problem_response,
    refuse_nul_in,
)

DESCRIPTION = """The HTTP API of registry_ui: read templates, versions, diffs, requests,
batches and the audit trail; validate and register template files; file, approve and
reject promotion requests. Authenticate with `Authorization: Bearer <token>` (make a token
on the dashboard's API tokens page). Errors are RFC 9457 problem details. See docs/api.md."""


class BoundedParser(Parser):
    """JSON bodies through core.limits.loads_json (nesting bounded), as every JSON input."""

    def parse_body(self, request):
        try:
            parsed = loads_json(request.body)
        except (UnicodeDecodeError, ValueError) as error:
            raise ApiProblem(
                400,
                "bad-json",
                "The body is not JSON",
                f"body: not JSON ({error})",
                errors=[{"field": "body", "message": str(error), "accepted": "a JSON object"}],
            ) from None
        refuse_nul_in(parsed)
        return parsed


class LocalSwagger(DocsBase):
    """Swagger UI from the site's own static files (no CDN)."""

    def render_page(self, request, api, **kwargs):
        return render(
            request,
            "registry_ui/api/docs.html",
            {"openapi_url": reverse(f"{api.urls_namespace}:openapi-json"), "api": api},
        )


class Api(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Error answers are documented as what they are: application/problem+json."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        answer["content"] = {CONTENT_TYPE: content["application/json"]}
        return schema


api = Api(
    title="registry_ui API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=TokenAuth(),
    parser=BoundedParser(),
    docs=LocalSwagger(),
)
api.add_router("", read.router)
api.add_router("", outcomes.router)


@api.exception_handler(ApiProblem)
def _problem(request, exc: ApiProblem):
    return problem_response(request, exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem_response(
        request, unauthorized("send 'Authorization: Bearer <token>' with an API token")
    )


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = []
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else "body"
        parts = location[1:]
        if where == "body" and parts[:1] == ["body"]:
            parts = parts[1:]  # the view's parameter name, not a field of the body
        field = ".".join(parts) or where
        errors.append(
            {
                "field": f"{where}.{field}" if field != where else where,
                "message": str(error.get("msg", "invalid")),
                "accepted": _accepted(error),
            }
        )
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(
        request,
        ApiProblem(422, "invalid-input", "Invalid input", detail or "invalid input", errors=errors),
    )


def _accepted(error: dict) -> str | None:
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind == "missing":
        return "a value (the field is required)"
    if "expected" in context:
        return f"one of {context['expected']}"
    if "ge" in context or "le" in context:
        low, high = context.get("ge"), context.get("le")
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        return f"at least {low}" if low is not None else f"at most {high}"
    if "max_length" in context:
        return f"at most {context['max_length']} characters or items"
    if kind.startswith("int"):
        return "a whole number"
    if kind.startswith("string"):
        return "a string"
    if kind.startswith("bool"):
        return "true or false"
    return None


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, ApiProblem):  # the body parser's, wrapped by ninja
        return problem_response(request, exc.__cause__)
    return problem_response(request, ApiProblem(exc.status_code, "http-error", "Refused", str(exc)))


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return problem_response(
        request,
        ApiProblem(
            403, "forbidden", "Not allowed", str(exc) or "the token's account may not do this"
        ),
    )


@api.exception_handler(PolicyError)
def _policy(request, exc):
    return problem_response(
        request, ApiProblem(409, "refused-by-policy", "Refused by policy", str(exc))
    )


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem_response(
        request, ApiProblem(404, "not-found", "Not found", str(exc) or "not found")
    )


@api.exception_handler(ObjectDoesNotExist)
def _missing(request, exc):
    return problem_response(
        request, ApiProblem(404, "not-found", "Not found", str(exc) or "not found")
    )


def _no_such_endpoint(request):
    return problem_response(
        request,
        ApiProblem(
            404,
            "no-such-endpoint",
            "No such endpoint",
            f"{request.method} {request.path[:200]}: no such endpoint; the endpoints are listed "
            "at /api/v1/docs",
        ),
    )


@functools.cache
def urlpatterns() -> tuple[list, str, str]:
    """The API's URLs, open to the token-authenticated: no sign-in, no CSRF (a browser
    never sends the Authorization header on its own), no caching."""
    patterns, app_name, namespace = api.urls
    patterns = [*patterns, re_path(r"", _no_such_endpoint)]
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = never_cache(csrf_exempt(login_not_required(pattern.callback)))
    return patterns, app_name, namespace


def outcomes_view():
    """The outcomes endpoint's view, for its URL name kept outside the namespace."""
    patterns, _, _ = urlpatterns()
    view = next(p.callback for p in patterns if getattr(p, "name", "") == "outcomes_api")
    return require_POST(view)
