"""Two calls with one Idempotency-Key at the same time, on PostgreSQL: the second waits for
the first's transaction and gets its answer; one change is made, never two."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction

from registry_ui.web.api import idempotency
from registry_ui.web.models import ApiToken, IdempotentCall, PromotionRequest
from tests.web.api.conftest import personal

ASK = {"template": "team/greeting", "version": "1.2.0", "target": "staging", "justification": "j"}


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    cache.clear()


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrent transactions need PostgreSQL (CI sets DATABASE_URL to it)",
    ),
]


def post_in_thread(api, body, key, answers, lock):
    try:
        response = api.post("/requests", body, headers={"Idempotency-Key": key})
        with lock:
            answers.append((response.status_code, response.json()))
    finally:
        connections.close_all()


def test_a_call_waits_for_one_in_flight_with_its_key_and_gets_its_answer(erin, world):
    api = personal(erin, ["request"])
    token = ApiToken.objects.get(name="tests")
    answers, lock = [], threading.Lock()
    held = {"status": 201, "body": {"dry_run": False, "request": None, "detail": "the first"}}
    thread = threading.Thread(target=post_in_thread, args=(api, ASK, "race", answers, lock))
    with transaction.atomic():
        # The first call's row, not yet committed: the second's insert has to wait for it.
        IdempotentCall.objects.create(
            token=token,
            key="race",
            fingerprint=idempotency.fingerprint_of("POST", "/api/v1/requests", ASK),
            **held,
        )
        thread.start()
        thread.join(timeout=1.5)
        assert thread.is_alive(), "the second call did not wait for the first"
    thread.join(timeout=30)

    assert answers == [(201, held["body"])]
    assert not PromotionRequest.objects.exists()  # the second call filed nothing


def test_when_the_first_call_fails_the_waiting_one_runs(erin, world):
    api = personal(erin, ["request"])
    token = ApiToken.objects.get(name="tests")
    answers, lock = [], threading.Lock()
    thread = threading.Thread(target=post_in_thread, args=(api, ASK, "race", answers, lock))
    with pytest.raises(RuntimeError), transaction.atomic():
        IdempotentCall.objects.create(token=token, key="race", fingerprint="x", status=0, body={})
        thread.start()
        thread.join(timeout=1.5)
        assert thread.is_alive()
        raise RuntimeError("the first call fails: its row is rolled back")
    thread.join(timeout=30)

    assert [status for status, _ in answers] == [201]
    assert PromotionRequest.objects.count() == 1


def test_eight_simultaneous_retries_file_one_request_and_get_one_answer(erin, world):
    api = personal(erin, ["request"])
    answers, lock = [], threading.Lock()
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        post_in_thread(api, ASK, "burst", answers, lock)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 8
    assert {status for status, _ in answers} == {201}
    assert len({str(body) for _, body in answers}) == 1
    assert PromotionRequest.objects.count() == 1
    assert IdempotentCall.objects.count() == 1
