"""The operations page: batches and releases with a progress bar that polls only while they
run, failed operations with their error, and the retry button (authors and reviewers)."""

from __future__ import annotations

import pytest

from registry_ui.web.models import AuditEvent, Batch, Operation
from registry_ui.web.reviews import releases
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import HTMX, signed_in, template, version
from tests.support.mirror_rows import batch as make_batch

pytestmark = pytest.mark.django_db
POLLING = 'hx-trigger="every 2s"'


def running_batch() -> Batch:
    return make_batch(
        "alice",
        {"template_name": "t/a", "status": "succeeded"},
        {"template_name": "t/b", "status": "running"},
        {"template_name": "t/c"},
        status="running",
        succeeded=1,
    )


def failed_batch(error: str = "MLflow refused: version 1.0.0 exists with other content"):
    return make_batch(
        "alice",
        {"template_name": "t/a", "status": "succeeded"},
        {"template_name": "t/b", "status": "failed", "last_error": error, "attempts": 3},
        status="failed",
        succeeded=1,
        failed=1,
    )


def test_a_running_batch_polls_its_progress_every_two_seconds(alice):
    batch = running_batch()
    client = signed_in(alice)

    page = client.get("/operations/")
    fragment = client.get(f"/operations/batches/{batch.pk}/progress", headers=HTMX)

    assert f'hx-get="/operations/batches/{batch.pk}/progress" {POLLING}' in page.text
    assert '<progress max="3" value="1"' in page.text and "1 of 3 done" in page.text
    assert fragment.text.lstrip().startswith(f'<div id="batch-{batch.pk}-progress"')
    assert POLLING in fragment.text


def test_the_fragment_of_a_finished_batch_has_no_trigger_so_polling_stops(alice):
    batch = running_batch()
    client = signed_in(alice)
    Operation.objects.filter(batch=batch).update(status="succeeded")
    Batch.objects.filter(pk=batch.pk).update(status="succeeded", succeeded=3)

    fragment = client.get(f"/operations/batches/{batch.pk}/progress", headers=HTMX)
    detail = client.get(f"/operations/batches/{batch.pk}", headers=HTMX)

    assert "hx-trigger" not in fragment.text and "hx-get" not in fragment.text
    assert '<progress max="3" value="3"' in fragment.text
    assert detail.text.count("hx-trigger") == 0
    assert 'id="batch-status" hx-swap-oob="innerHTML">3 of 3 done: succeeded.' in detail.text


def test_the_batch_page_polls_its_whole_detail_while_running(alice):
    batch = running_batch()

    page = signed_in(alice).get(f"/operations/batches/{batch.pk}")

    polling = f'hx-get="/operations/batches/{batch.pk}" {POLLING}'
    assert f'<section id="batch-detail" aria-labelledby="batch-progress-heading" {polling}' in (
        page.text
    )
    assert '<p id="batch-status" class="visually-hidden" role="status">' in page.text


def test_failed_operations_show_their_error_and_a_retry_button(alice):
    batch = failed_batch()
    failed = Operation.objects.get(batch=batch, status="failed")

    page = signed_in(alice).get("/operations/")

    assert "MLflow refused: version 1.0.0 exists with other content" in page.text
    assert f'<button type="submit" name="operation" value="{failed.pk}">Retry</button>' in page.text
    assert "1 failed" in page.text


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_authors_and_reviewers_retry_a_failed_operation(who, alice, bob):
    user = {"alice": alice, "bob": bob}[who]
    batch = failed_batch()
    failed = Operation.objects.get(batch=batch, status="failed")

    response = signed_in(user).post(
        "/operations/retry",
        {"operation": str(failed.pk), "next": f"/operations/batches/{batch.pk}"},
    )

    assert response.status_code == 303
    assert response["Location"] == f"/operations/batches/{batch.pk}?retried=1"
    failed.refresh_from_db()
    batch.refresh_from_db()
    assert (failed.status, batch.status, batch.failed) == ("pending", "running", 0)
    event = AuditEvent.objects.get(action="operation.retried")
    assert (event.actor, event.object_id, event.source) == (who, str(failed.pk), "dashboard")


def test_others_may_not_retry(dave):
    batch = failed_batch()
    failed = Operation.objects.get(batch=batch, status="failed")

    response = signed_in(dave).post("/operations/retry", {"operation": str(failed.pk)})
    page = signed_in(dave).get("/operations/")

    assert response.status_code == 403
    failed.refresh_from_db()
    assert failed.status == "failed"
    assert not AuditEvent.objects.filter(action="operation.retried").exists()
    assert "Retrying needs an author or a reviewer." in page.text


def test_an_operation_of_a_promotion_request_is_not_retried_here(alice, bob):
    row = template("t/request")
    version(row, "1.0.0")
    filed = reviews.file_request(
        alice, template_name="t/request", version="1.0.0", target="staging", justification="j"
    )
    reviews.approve(bob, filed.pk, comment="ok")
    operation = Operation.objects.get(request=filed)
    Operation.objects.filter(pk=operation.pk).update(status="failed", last_error="refused")

    response = signed_in(bob).post("/operations/retry", {"operation": str(operation.pk)})
    page = signed_in(bob).get("/operations/")

    assert response.status_code == 400
    assert f"carries out promotion request #{filed.pk}: it is not retried here" in response.text
    operation.refresh_from_db()
    assert operation.status == "failed"
    assert f'Carries out <a href="/requests/{filed.pk}/">request #{filed.pk}</a>' in page.text


def test_a_release_shows_how_many_of_its_templates_moved(alice):
    names = ["t/r1", "t/r2"]
    for name in names:
        version(template(name), "1.0.0")
    release = releases.file_release(
        alice,
        lines=[releases.ReleaseLine(name, "1.0.0", "staging") for name in names],
        justification="spring",
    )
    batch = make_batch(
        "alice",
        {"template_name": f"release#{release.pk}", "kind": "release", "request": release},
        status="running",
    )
    release.report = {"phase": "applying", "items": {"1": {"template": "t/r1", "status": "moved"}}}
    release.save()

    page = signed_in(alice).get("/operations/")

    assert f"release #{release.pk}: 1 of 2 templates moved, applying" in page.text
    assert '<progress max="2" value="1"' in page.text
    assert f'hx-get="/operations/batches/{batch.pk}/progress"' in page.text


def test_an_empty_operations_page_says_what_fills_it(reader):
    page = signed_in(reader).get("/operations/")

    assert "Nothing has been filed yet" in page.text
