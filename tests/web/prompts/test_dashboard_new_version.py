"""The new version editor: live validation with every error at line:col, the next version
suggested from the change, and a one-version batch filed by an author."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from registry_ui.core.errors import BatchRegistrationError
from registry_ui.prompt_model import get_registry
from registry_ui.web.models import AuditEvent, Batch, TemplateVersion
from registry_ui.web.operations import queue
from registry_ui.web.prompts.forms import NewVersionForm
from tests.support.mirror_rows import HTMX, METADATA, member, signed_in, template, version

pytestmark = pytest.mark.django_db
BROKEN = "Hello {name\nYour {0} balance is {balance:.2f}}"
# What alice files: she is its author (a metadata author must name an author's account).
BY_ALICE = {**METADATA, "author": "alice"}


def draft(name="t/new", number="1.0.0", text="Hello {name}", metadata=None, **extra) -> dict:
    return {
        "name": name,
        "version": number,
        "template": text,
        "metadata": json.dumps(METADATA if metadata is None else metadata),
        **extra,
    }


def test_the_editor_validates_live_and_changes_nothing(alice):
    client = signed_in(alice)

    page = client.get("/versions/new")
    check = client.post("/versions/validate", draft(text=BROKEN), headers=HTMX)

    assert 'hx-post="/versions/validate" hx-trigger="input changed delay:500ms"' in page.text
    assert '<section id="version-check" class="check" aria-live="polite"' in page.text
    assert "<html" not in check.text
    assert "line 1, column 7</span> (1:7)" in check.text  # the '{' never closed
    assert "line 2, column 7</span> (2:7)" in check.text  # positional {0}
    assert "line 2, column 34</span> (2:34)" in check.text  # the stray '}'
    assert "3 problems" in check.text
    assert not Batch.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="batch.").exists()


def test_the_next_version_is_suggested_from_the_change(alice):
    row = template("t/next")
    version(row, "1.2.0", "Hi {who}")
    client = signed_in(alice)

    def suggested(text: str) -> str:
        response = client.post("/versions/validate", draft("t/next", "", text), headers=HTMX)
        return response.text.split("Suggested version: <strong>")[1].split("<")[0]

    assert suggested("Hi {who}!") == "1.2.1"
    assert suggested("Hi {who} from {city}") == "1.3.0"
    assert suggested("Hi there") == "2.0.0"


def test_a_new_template_starts_at_1_0_0_and_the_editor_prefills_from_the_latest(alice):
    row = template("t/prefill")
    version(row, "1.4.2", "Hi {who}")
    client = signed_in(alice)

    fresh = client.post("/versions/validate", draft("t/brand-new", ""), headers=HTMX)
    prefilled = client.get("/versions/new", {"template": "t/prefill"})

    assert "Suggested version: <strong>1.0.0</strong> (a new template)" in fresh.text
    assert 'id="version-version" name="version" value="1.4.3"' in prefilled.text
    assert ">Hi {who}</textarea>" in prefilled.text


def test_bad_input_shows_every_error_and_files_nothing(alice, default_metadata_policy):
    row = template("t/bad")
    version(row, "1.2.0", "Hi {who}")

    response = signed_in(alice).post(
        "/versions/new",
        draft("t/bad", "1.2.1", "Hi {who} {city", metadata={"author": "alice"}, reason="r"),
    )

    assert response.status_code == 400
    assert "Nothing was filed" in response.text
    assert "(1:10)" in response.text  # the unclosed '{' of {city
    assert "purpose" in response.text  # the metadata policy's missing keys
    assert not Batch.objects.exists()


def test_a_version_not_bumped_enough_is_refused_with_the_minimum(alice):
    row = template("t/bump")
    version(row, "1.2.0", "Hi {who}")

    response = signed_in(alice).post("/versions/new", draft("t/bump", "1.2.1", "Hi {who} {x}"))

    assert response.status_code == 400
    assert "against 1.2.0, the latest: adds variable &#x27;x&#x27;: needs 1.3.0 or later" in (
        response.text
    )
    assert not Batch.objects.exists()


def test_a_template_error_belongs_to_the_template_field_at_its_line_and_column(db):
    form = NewVersionForm(draft(text="Hi {who"))

    assert not form.is_valid()
    assert form.errors["template"] == [
        "1:4: '{' at 1:4 is never closed: close the field with '}' or write '{{' for a literal "
        "brace"
    ]
    assert [(e.line, e.column, e.code) for e in form.template_errors] == [(1, 4, "unclosed-brace")]
    assert form.problem_count == 1


def test_metadata_that_is_not_json_is_refused_at_its_line_and_column(db):
    form = NewVersionForm({**draft(), "metadata": "{\r\n  author: 1}"})

    assert not form.is_valid()
    assert form.errors["metadata"] == [
        "2:3: not JSON: Expecting property name enclosed in double quotes; write an object, "
        'e.g. {"author": "alice"}'
    ]
    assert form.parsed_metadata is None
    assert form.draft["metadata"] == "{\n  author: 1}"  # still shown, as typed


def test_the_form_cleans_the_draft_as_the_editor_always_did(db):
    form = NewVersionForm(
        {"name": "  t/clean ", "version": " 1.0.0 ", "template": "Hi\r\n{who}", "reason": " r "}
    )

    form.is_valid()

    assert form.draft == {
        "name": "t/clean",
        "version": "1.0.0",
        "template": "Hi\n{who}",
        "metadata": "{}",
        "chat": "",  # a text template
        "reason": " r ",  # stripped only when filed
    }
    assert form.suggested_version == "1.0.0"


@pytest.mark.parametrize(
    ("registry_says", "shown"),
    [
        (BatchRegistrationError(["first <problem>", "second"]), "<h3>The registry</h3>"),
        (None, "t/new 1.0.0 is registered already with this content: nothing to file"),
    ],
)
def test_a_refusal_by_the_registry_shows_in_the_form(alice, monkeypatch, registry_says, shown):
    def batch_register(**kwargs):
        if isinstance(registry_says, Exception):
            raise registry_says
        return registry_says

    monkeypatch.setattr(queue, "batch_register", batch_register)

    response = signed_in(alice).post("/versions/new", draft())

    assert response.status_code == 400
    assert "Nothing was filed" in response.text
    assert shown in response.text
    if registry_says is not None:
        assert "<li>first &lt;problem&gt;</li><li>second</li>" in response.text
        assert "2 problems" in response.text


def test_only_authors_file_versions(bob):
    response = signed_in(bob).post("/versions/new", draft())
    page = signed_in(bob).get("/versions/new")

    assert response.status_code == 403
    assert not Batch.objects.exists()
    assert "filing it needs the register_version permission" in page.text
    assert "File this version" not in page.text


def test_a_reviewer_is_refused_before_the_draft_is_even_checked(bob):
    response = signed_in(bob).post("/versions/new", draft(number="not a version"))

    assert response.status_code == 403
    assert not Batch.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks")
def test_an_author_files_a_one_version_batch_that_registers_it(unique_name):
    alice = member("alice", "authors")
    name = unique_name("filed")

    with transaction.atomic():  # as a request would be: the batch is sent after commit
        response = signed_in(alice).post(
            "/versions/new",
            draft(name, "1.0.0", "Hello {name}", metadata=BY_ALICE, reason="first cut"),
        )

    batch = Batch.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/versions/filed/{batch.pk}"
    batch.refresh_from_db()
    assert (batch.actor, batch.reason, batch.total, batch.status) == (
        "alice",
        "first cut",
        1,
        "succeeded",
    )
    mirrored = TemplateVersion.objects.get(template__name=name)
    assert (mirrored.version, mirrored.text) == ("1.0.0", "Hello {name}")
    assert [r.version for r in get_registry().gateway.list_versions(name)] == ["1.0.0"]
    filed = AuditEvent.objects.get(action="batch.registration_filed")
    assert (filed.actor, filed.source) == ("alice", "dashboard")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_the_editor_files_while_mlflow_is_down_and_the_worker_registers_later(
    unique_name, mlflow_sqlite_uri, settings
):
    from registry_ui.prompt_model import configure_mlflow_with_registry
    from registry_ui.web.models import Operation
    from registry_ui.web.operations import worker
    from tests.support.mlflow_server import free_port

    alice = member("alice", "authors")
    name = unique_name("offline")
    configure_mlflow_with_registry(f"http://127.0.0.1:{free_port()}")  # nothing listens
    try:
        with transaction.atomic():
            response = signed_in(alice).post(
                "/versions/new", draft(name, "1.0.0", "Hi {x}", metadata=BY_ALICE)
            )
        batch = Batch.objects.get()
        operation = Operation.objects.get(batch=batch)
        page = signed_in(alice).get(f"/operations/batches/{batch.pk}")
    finally:
        configure_mlflow_with_registry(mlflow_sqlite_uri)

    # Filed without an MLflow call; its first attempt met MLflow down and waits to retry.
    assert response.status_code == 303
    assert page.status_code == 200
    assert "tries again" in page.text and "127.0.0.1" in page.text  # when, and why
    assert (operation.status, operation.attempts) == ("pending", 1)
    assert operation.next_attempt_at is not None
    # MLflow is back: the retry registers it.
    Operation.objects.filter(id=operation.id).update(next_attempt_at=None)
    worker.run(str(operation.id), send=lambda ids, countdown=None: None)
    batch.refresh_from_db()
    assert batch.status == "succeeded"
    assert [r.version for r in get_registry().gateway.list_versions(name)] == ["1.0.0"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks")
def test_a_refusal_only_mlflow_knows_of_shows_on_the_batch_page(unique_name):
    from registry_ui.prompt_model import PromptModel

    alice = member("alice", "authors")
    name = unique_name("raced")
    # Registered in MLflow by another program; the mirror has not seen it yet.
    PromptModel.register_many([PromptModel(name, "Other {x}", "1.0.0", metadata={})])

    with transaction.atomic():
        response = signed_in(alice).post(
            "/versions/new", draft(name, "1.0.0", "Mine {x}", metadata=BY_ALICE)
        )

    batch = Batch.objects.get()
    assert response.status_code == 303
    batch.refresh_from_db()
    assert batch.status == "failed"
    page = signed_in(alice).get(f"/operations/batches/{batch.pk}")
    assert "already registered with different content" in page.text
