"""Every endpoint x the scopes: without the scope it needs, a token gets 403 naming it,
whatever else it holds; with it, the call gets past the scope (the account's permissions
and the rules decide the rest: tests/web/api/test_write.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from registry_ui.web.models import API_SCOPES
from registry_ui.web.reviews import services as reviews
from tests.web.api.conftest import personal

pytestmark = pytest.mark.django_db

V = "/templates/team/greeting/-/versions/1.1.0"
FILES = {"files": [{"path": "a.yaml", "content": "name: team/x\n"}]}
ASK = {"template": "team/greeting", "version": "1.2.0", "target": "staging", "justification": "j"}
ENDPOINTS = [
    ("get", "/templates", None, "read"),
    ("get", "/templates/team/greeting", None, "read"),
    ("get", V, None, "read"),
    ("post", V + "/render", {"values": {"who": "a", "place": "b"}}, "read"),
    ("get", "/templates/team/greeting/-/diff?from=1.0.0&to=1.1.0", None, "read"),
    ("get", "/requests", None, "read"),
    ("get", "/requests/{pk}", None, "read"),
    ("get", "/batches", None, "read"),
    ("get", "/audit", None, "read"),
    ("get", "/audit.csv", None, "read"),
    ("post", "/validate", FILES, "read"),
    ("post", "/batches", FILES, "register"),
    ("post", "/requests", {**ASK, "dry_run": True}, "request"),
    ("post", "/rollbacks", {**ASK, "reason": "r", "dry_run": True}, "request"),
    (
        "post",
        "/releases",
        {
            "items": [{"template": "team/farewell", "version": "0.1.0", "target": "staging"}],
            "dry_run": True,
        },
        "request",
    ),
    ("post", "/requests/{pk}/approve", {}, "review"),
    ("post", "/requests/{pk}/reject", {"comment": "no"}, "review"),
    ("post", "/requests/{pk}/withdraw", None, "request"),
]


@pytest.fixture
def open_request(erin, world):
    cache.clear()
    return reviews.file_request(
        erin, template_name="team/greeting", version="1.2.0", target="staging", justification="j"
    )


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_without_its_scope_an_endpoint_refuses_naming_it(
    method, path, body, scope, root, open_request
):
    others = [s for s in API_SCOPES if s != scope]
    path = path.format(pk=open_request.pk)
    api = personal(root, others, name="others")

    response = getattr(api, method)(path, body)

    assert response.status_code == 403, response.content
    assert response.json()["scope"] == scope
    assert f"{scope!r} scope" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_with_its_scope_an_endpoint_gets_past_the_scope(
    method, path, body, scope, root, open_request
):
    path = path.format(pk=open_request.pk)
    api = personal(root, [scope], name="just-that")

    response = getattr(api, method)(path, body)

    assert response.status_code != 401
    assert response.status_code != 403 or "scope" not in response.json(), response.content


def test_comment_takes_request_or_review(root, open_request):
    for scope in ("request", "review"):
        response = personal(root, [scope], name=scope).post(
            f"/requests/{open_request.pk}/comment", {"text": "hm"}
        )
        assert response.status_code == 200, response.content
    refused = personal(root, ["read"], name="read").post(
        f"/requests/{open_request.pk}/comment", {"text": "hm"}
    )
    assert refused.status_code == 403 and refused.json()["scope"] == "request"


def test_the_schema_and_docs_page_are_open_and_hold_no_data(client, world):
    """Open without a token on purpose (docs/api.md): they describe the API, no data."""
    schema = client.get("/api/v1/openapi.json")
    docs = client.get("/api/v1/docs")
    data = client.get("/api/v1/templates")

    assert schema.status_code == 200 and "/api/v1/releases" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"team/greeting" not in schema.content + docs.content
    assert data.status_code == 401
