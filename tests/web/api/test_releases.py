"""POST /api/v1/releases: many moves requested as one release, with a dry run, the same
rules as the release page, Idempotency-Key retries, and the items on GET /requests/{pk}."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from registry_ui.web.models import AuditEvent, IdempotentCall, PromotionRequest
from tests.web.api.conftest import personal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sqlite_registry_uri")]

# team/greeting: 1.0.0 production, 1.1.0 staging, 1.2.0 dev; team/farewell: 0.1.0 dev.
MOVES = [
    {"template": "team/greeting", "version": "1.1.0", "target": "production"},
    {"template": "team/farewell", "version": "0.1.0", "target": "staging"},
]


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    cache.clear()


def test_a_dry_run_plans_every_item_and_files_nothing(erin, world):
    response = personal(erin, ["request"]).post("/releases", {"items": MOVES, "dry_run": True})

    body = response.json()
    assert response.status_code == 200, body
    assert body["dry_run"] is True and body["ready"] is True and body["request"] is None
    greeting, farewell = body["plan"]
    assert (greeting["template"], greeting["from_stage"], greeting["target"]) == (
        "team/greeting",
        "staging",
        "production",
    )
    assert greeting["replaces"] == "1.0.0" and greeting["problems"] == []
    assert farewell["from_stage"] == "dev" and farewell["replaces"] is None
    assert "nothing was filed" in body["detail"]
    assert not PromotionRequest.objects.exists()


def test_a_dry_run_names_what_stops_each_item(erin, world):
    skipping = {"template": "team/greeting", "version": "1.2.0", "target": "production"}
    unknown = {"template": "team/greeting", "version": "9.9.9", "target": "staging"}

    body = (
        personal(erin, ["request"])
        .post("/releases", {"items": [skipping, unknown], "dry_run": True})
        .json()
    )

    assert body["ready"] is False
    skip_plan, unknown_plan = body["plan"]
    assert any("staging" in p for p in skip_plan["problems"]), skip_plan
    assert any("9.9.9" in p for p in unknown_plan["problems"]), unknown_plan
    assert not PromotionRequest.objects.exists()


def test_filing_makes_one_release_with_its_items_listed_on_the_request(erin, world):
    api = personal(erin, ["request", "read"])

    filed = api.post("/releases", {"items": MOVES, "justification": "spring launch"})

    body = filed.json()
    assert filed.status_code == 201, body
    release = body["request"]
    assert release["kind"] == "release" and release["status"] == "open"
    assert release["required_approvals"] == 2  # the strictest item's: production
    assert [(i["template"], i["version"], i["target_stage"]) for i in release["items"]] == [
        ("team/greeting", "1.1.0", "production"),
        ("team/farewell", "0.1.0", "staging"),
    ]
    shown = api.get(f"/requests/{release['id']}").json()
    assert shown["items"] == release["items"]
    assert PromotionRequest.objects.filter(release_id=release["id"]).count() == 2
    call = AuditEvent.objects.get(action="api.call")
    assert call.after["what"] == "release.file" and call.source == "api"
    assert AuditEvent.objects.get(action="release.filed").source == "api"
    # A single request's detail carries no items.
    single = api.post(
        "/requests",
        {
            "template": "team/greeting",
            "version": "1.2.0",
            "target": "staging",
            "justification": "j",
        },
    ).json()["request"]
    assert single["items"] == []


def test_a_release_with_a_problem_is_refused_naming_it_and_files_nothing(erin, world):
    skipping = {"template": "team/greeting", "version": "1.2.0", "target": "production"}

    refused = personal(erin, ["request"]).post(
        "/releases", {"items": [MOVES[1], skipping], "justification": "go"}
    )

    assert refused.status_code == 409, refused.content
    assert "team/greeting 1.2.0" in refused.json()["detail"]
    assert not PromotionRequest.objects.exists()


def test_filing_needs_a_justification(erin, world):
    refused = personal(erin, ["request"]).post("/releases", {"items": MOVES})

    assert refused.status_code in (400, 409), refused.content
    assert "justification" in refused.json()["detail"].lower()
    assert not PromotionRequest.objects.exists()


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"template": " ", "version": "1.0.0", "target": "staging"}, "items[0].template"),
        ({"template": "team/greeting", "version": "", "target": "staging"}, "items[0].version"),
        ({"template": "team/greeting", "version": "1.1.0", "target": "dev"}, "items[0].target"),
    ],
)
def test_a_bad_item_is_refused_naming_its_field_and_what_is_accepted(erin, world, item, field):
    response = personal(erin, ["request"]).post("/releases", {"items": [item], "dry_run": True})

    assert response.status_code == 400, response.content
    error = response.json()["errors"][0]
    assert error["field"] == field and error["accepted"]


def test_the_number_of_items_is_bounded(erin, world):
    api = personal(erin, ["request"])
    empty = api.post("/releases", {"items": [], "dry_run": True})
    many = api.post("/releases", {"items": [MOVES[0]] * 101, "dry_run": True})

    assert empty.status_code == 422 and many.status_code == 422
    assert "items" in str(many.json()["errors"])


def test_who_may_file_a_release(erin, dave, bob, world):
    no_scope = personal(erin, ["read"]).post("/releases", {"items": MOVES, "dry_run": True})
    analyst = personal(dave, ["request"]).post("/releases", {"items": MOVES, "dry_run": True})

    assert no_scope.status_code == 403 and no_scope.json()["scope"] == "request"
    assert analyst.status_code == 403
    assert not PromotionRequest.objects.exists()


def test_a_retry_with_the_same_key_gets_the_first_answer(erin, world):
    api = personal(erin, ["request"])
    body = {"items": MOVES, "justification": "spring launch"}
    key = {"Idempotency-Key": "release-run-7"}

    first = api.post("/releases", body, headers=key)
    again = api.post("/releases", body, headers=key)
    other = api.post("/releases", {**body, "justification": "another"}, headers=key)
    unkeyed = api.post("/releases", body)

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert other.status_code == 409 and "different call" in other.json()["detail"]
    assert PromotionRequest.objects.filter(kind="release").count() == 1
    assert IdempotentCall.objects.count() == 1
    # Without a key, filing the same release again is refused: its items are open already.
    assert unkeyed.status_code == 409 and "open" in unkeyed.json()["detail"]
