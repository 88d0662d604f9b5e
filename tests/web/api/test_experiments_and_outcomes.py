"""An experiment's results through the API, and the outcomes endpoint reached with an API
token of the outcomes scope (the old service tokens: tests/web/experiments)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from registry_ui.web.api import tokens
from registry_ui.web.experiments import results as experiment_results
from registry_ui.web.models import OutcomeEvent
from tests.web.api.conftest import ApiClient, personal
from tests.web.experiments.test_experiments import define, event, ingest, mirror, outcomes

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(db):
    cache.clear()
    mirror("t/hook", {"1.0.0": "archived", "1.1.0": "production", "1.2.0": "staging"})
    return define()


def test_results_with_intervals_as_the_page_computes_them(dave, hook):
    ingest(outcomes("control", 60, 1000) + outcomes("treatment", 85, 1000))

    body = personal(dave, ["read"]).get("/experiments/hook-test").json()

    page = experiment_results.results(hook)
    assert body["metric"] == "engagement" and body["kind"] == "rate"
    control, treatment = body["variants"]
    assert (control["name"], control["n"], treatment["n"]) == ("control", 1000, 1000)
    assert control["estimate"]["value"] == pytest.approx(page.variants[0].estimate.value)
    low, high = treatment["estimate"]["ci"]["low"], treatment["estimate"]["ci"]["high"]
    assert low < 0.085 < high
    assert treatment["comparison"]["p_value"] == pytest.approx(page.variants[1].comparison.p_value)
    assert control["comparison"] is None


def test_results_without_data_and_for_whom(alice, dave, hook):
    analyst = personal(dave, ["read"])
    empty = analyst.get("/experiments/hook-test")
    author = personal(alice, ["read"]).get("/experiments/hook-test")
    missing = analyst.get("/experiments/nope")

    assert empty.status_code == 200 and empty.json()["variants"][0]["n"] == 0
    assert author.status_code == 403 and "view_metrics" in author.json()["detail"]
    assert missing.status_code == 404


def test_an_api_token_with_the_outcomes_scope_reports_outcomes(dave, hook):
    _, raw = tokens.token_create(dave, name="service", scopes=["outcomes"])
    _, reader = tokens.token_create(dave, name="reader", scopes=["read"])
    body = {"events": [event(1), event(2)]}

    sent = ApiClient(raw).post("/outcomes", body)
    again = ApiClient(raw).post("/outcomes", body)
    refused = ApiClient(reader).post("/outcomes", body)

    assert sent.json() == {"received": 2, "accepted": 2, "duplicates": 0}
    assert again.json() == {"received": 2, "accepted": 0, "duplicates": 2}
    assert refused.status_code == 403 and refused.json()["scope"] == "outcomes"
    assert OutcomeEvent.objects.count() == 2


def test_a_nul_in_an_outcome_event_is_refused_in_the_old_shape_too(dave, hook):
    _, raw = tokens.token_create(dave, name="service", scopes=["outcomes"])

    response = ApiClient(raw).post("/outcomes", {"events": [event(1) | {"unit_id": "a\x00"}]})

    assert response.status_code == 400
    body = response.json()
    assert "body.events[0].unit_id" in body["error"] and body["error"] == body["detail"]
    assert not OutcomeEvent.objects.exists()


def test_an_api_token_reports_only_experiments_its_account_may_name(alice, hook):
    """Issue 16 finding 4: outcomes are scoped to experiments. An API token of an account
    that cannot define experiments reports none until an analyst names its service."""
    _, raw = tokens.token_create(alice, name="service", scopes=["outcomes"])

    response = ApiClient(raw).post("/outcomes", {"events": [event(1)]})

    assert response.status_code == 403
    assert "may not report outcomes for experiment" in response.json()["detail"]
    assert not OutcomeEvent.objects.exists()
