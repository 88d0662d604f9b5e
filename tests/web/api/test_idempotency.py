"""Idempotency-Key: answers kept IDEMPOTENCY_HOURS then forgotten by the hourly task, and
two calls with one key at the same time on PostgreSQL making one change and one answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from registry_ui.web.api.tasks import forget_idempotent_calls
from registry_ui.web.models import IdempotentCall, PromotionRequest
from tests.web.api.conftest import personal

ASK = {"template": "team/greeting", "version": "1.2.0", "target": "staging", "justification": "j"}


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    cache.clear()


def age(hours: float) -> None:
    IdempotentCall.objects.update(created_at=timezone.now() - timedelta(hours=hours))


@pytest.mark.django_db
@pytest.mark.usefixtures("sqlite_registry_uri")
def test_answers_are_kept_for_the_window_then_forgotten(erin, world, settings):
    settings.IDEMPOTENCY_HOURS = 24
    api = personal(erin, ["request"])
    first = api.post("/requests", ASK, headers={"Idempotency-Key": "k1"})
    age(23)

    assert forget_idempotent_calls() == 0
    assert api.post("/requests", ASK, headers={"Idempotency-Key": "k1"}).json() == first.json()

    age(25)
    assert forget_idempotent_calls() == 1
    assert not IdempotentCall.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("sqlite_registry_uri")
def test_an_expired_key_not_yet_forgotten_is_a_new_call(erin, world, settings):
    settings.IDEMPOTENCY_HOURS = 1
    api = personal(erin, ["request"])
    api.post("/requests", {**ASK, "dry_run": True}, headers={"Idempotency-Key": "k2"})
    age(2)  # past the window; the hourly task has not run yet

    filed = api.post("/requests", ASK, headers={"Idempotency-Key": "k2"})

    assert filed.status_code == 201, filed.content  # not the old dry run's answer, nor a 409
    assert PromotionRequest.objects.count() == 1
    assert IdempotentCall.objects.get().status == 201


@pytest.mark.django_db
@pytest.mark.usefixtures("sqlite_registry_uri")
@pytest.mark.parametrize("key", ["", "x" * 201])
def test_a_key_of_a_wrong_length_is_refused(erin, world, key):
    response = personal(erin, ["request"]).post("/requests", ASK, headers={"Idempotency-Key": key})

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not PromotionRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("sqlite_registry_uri")
def test_keys_are_each_tokens_own(erin, world):
    one, two = personal(erin, ["request"], name="one"), personal(erin, ["request"], name="two")

    first = one.post("/requests", ASK, headers={"Idempotency-Key": "same"})
    second = two.post("/requests", ASK, headers={"Idempotency-Key": "same"})

    assert first.status_code == 201
    assert second.status_code == 409 and "open already" in second.json()["detail"]
