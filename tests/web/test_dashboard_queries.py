"""Speed, without timing: every list page makes the same number of SQL queries with 1 row as
with 100, and no page calls MLflow (pages read the mirror)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_ui import prompt_model
from registry_ui.web.audit import trail
from registry_ui.web.auth.roles import AUTHORS
from registry_ui.web.models import AuditEvent, Operation, Template
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import HTMX, signed_in, template, version
from tests.support.mirror_rows import batch as make_batch
from tests.support.mlflow_server import free_port
from tests.support.users import member

pytestmark = pytest.mark.django_db


def templates(start: int, stop: int) -> None:
    """Templates with a production, a staging and a dev version, and an open request."""
    requester = member(f"requester{start}", AUTHORS)
    for number in range(start, stop):
        name = f"load/t{number:03d}"
        row = template(name)
        version(row, "1.0.0", stage="production", metadata={"tags": ["x"]})
        version(row, "1.1.0", stage="staging")
        version(row, "1.2.0")
        reviews.file_request(
            requester, template_name=name, version="1.2.0", target="staging", justification="j"
        )


def batches(start: int, stop: int) -> None:
    for number in range(start, stop):
        make_batch(
            "alice",
            {"template_name": f"load/b{number}", "status": "succeeded"},
            {"template_name": f"load/b{number}", "status": "failed", "last_error": "no"},
            status="failed",
            succeeded=1,
            failed=1,
        )


def events(start: int, stop: int) -> None:
    trail.record_many(
        AuditEvent(
            actor="worker",
            action="version.stage_changed",
            object_type="template_version",
            object_id=f"load/t@1.0.{number}",
            before={"stage": "dev"},
            after={"stage": "staging"},
            source="worker",
        )
        for number in range(start, stop)
    )


def versions_of_one_template(start: int, stop: int) -> None:
    row = template("load/one") if start == 0 else template_named("load/one")
    for number in range(start, stop):
        version(row, f"1.0.{number}")
        move = {"before": {"stage": "dev"}, "after": {"stage": "staging"}}
        trail.record(
            actor="worker", action="version.stage_changed", object_type="template_version",
            object_id=f"load/one@1.0.{number}", source="worker", **move,
        )  # fmt: skip


def native_prompts(start: int, stop: int) -> None:
    """Native prompts with three versions each (mirror rows only)."""
    from registry_ui.web.models import NativePrompt

    for number in range(start, stop):
        prompt = NativePrompt.objects.create(
            name=f"load-n{number:03d}", aliases={"production": "1"}, governed=number % 2 == 0
        )
        for n in (1, 2, 3):
            prompt.versions.create(
                number=n, semver=f"1.0.{n - 1}", kind="text", template="Hi {{ who }}"
            )


def template_named(name: str) -> Template:
    return Template.objects.get(name=name)


def queries(client, url: str, **kwargs) -> int:
    client.get(url, **kwargs)  # warm: the session, the user and the permission caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, response.content[:300]
    return len(captured)


LIST_PAGES = [
    ("/", templates, 1, 100),
    ("/?q=load&stage=production&author=writer&tag=x", templates, 1, 100),
    ("/operations/", batches, 1, 100),
    ("/audit/", events, 1, 100),
    ("/audit/?template=load/t&source=worker", events, 1, 100),
    ("/templates/load/one", versions_of_one_template, 1, 100),
    ("/native-prompts/", native_prompts, 1, 100),
    ("/native-prompts/?q=load", native_prompts, 1, 100),
    ("/?q=load", native_prompts, 1, 100),  # the native prompts beside the templates
]


@pytest.mark.parametrize(("url", "fill", "few", "many"), LIST_PAGES)
def test_a_list_page_makes_as_many_queries_for_100_rows_as_for_1(url, fill, few, many, bob):
    client = signed_in(bob)

    fill(0, few)
    with_few = queries(client, url)
    fill(few, many)
    with_many = queries(client, url)

    assert with_many == with_few, (
        f"{url}: {with_few} queries with {few} rows, {with_many} with {many}"
    )


def test_the_htmx_search_fragment_makes_a_fixed_number_of_queries_too(bob):
    client = signed_in(bob)
    templates(0, 1)
    few = queries(client, "/?q=load", headers=HTMX)
    for number in range(1, 100):
        version(template(f"load/more{number:03d}"), "1.0.0")

    assert queries(client, "/?q=load", headers=HTMX) == few


@pytest.fixture
def unreachable_mlflow(mlflow_sqlite_uri):
    prompt_model.configure_mlflow_with_registry(f"http://127.0.0.1:{free_port()}")
    yield prompt_model.get_registry()
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def test_no_page_calls_mlflow(alice, unreachable_mlflow):
    row = template("t/offline")
    version(row, "1.0.0", stage="production")
    version(row, "1.1.0", "Hi {who}!", stage="staging")
    failed = make_batch(
        "alice", {"template_name": "t/offline", "status": "failed"}, status="failed"
    )
    client = signed_in(alice)
    calls = unreachable_mlflow.gateway.calls
    pages = [
        "/",
        "/?q=off",
        "/templates/t/offline",
        "/templates/t/offline/-/versions/1.1.0?v.who=Ann",
        "/templates/t/offline/-/diff?from=1.0.0&to=1.1.0",
        "/versions/new?template=t/offline",
        "/operations/",
        f"/operations/batches/{failed.pk}",
        f"/operations/batches/{failed.pk}/progress",
        "/audit/",
    ]

    answers = {url: client.get(url).status_code for url in pages}
    check = client.post(
        "/versions/validate",
        {"name": "t/offline", "version": "1.2.0", "template": "Hi {who}", "metadata": "{}"},
        headers=HTMX,
    )

    assert answers == dict.fromkeys(pages, 200)
    assert check.status_code == 200
    assert prompt_model.get_registry() is unreachable_mlflow
    assert unreachable_mlflow.gateway.calls == calls
    assert Operation.objects.count() == 1
