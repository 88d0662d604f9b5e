"""The emergency path in Chromium: production went bad, a reviewer rolls it back from the
template's page in two clicks (plus the reason), another approves, and the lineage says
"rollback to". Approved requests are carried out in process (Celery eager) against a local
MLflow store; the history before it went through the product's own requests. Screenshots at
desktop width and 390 px go to var/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import PromotionRequest
from registry_ui.web.reviews import services as reviews
from tests.browser.test_journey import make_user, sign_in
from tests.web.reviews.test_approvals import mirror_stages, mlflow_stages, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]

OLD = "Hi {who}, here is today's tip."
NEW = "Hi {who}, here is today's tip: {plan}."
WIDTHS = (1280, 390)


def promote(erin, bob, carol, name: str, number: str) -> None:
    """Through the product: a request to staging, then to production, approved each time."""
    for target, approvers in (("staging", (bob,)), ("production", (bob, carol))):
        request = reviews.file_request(
            erin, template_name=name, version=number, target=target, justification="ready"
        )
        for reviewer in approvers:
            reviews.approve(reviewer, request.pk, comment="fine")
        assert PromotionRequest.objects.get(pk=request.pk).status == "done"


def sideways(page) -> int:
    """How far the page scrolls sideways (0: it fits the viewport)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_a_reviewer_rolls_production_back_from_the_template_page(new_page, screenshot, unique_name):
    name = unique_name("rollback")
    PromptModel.register_many(
        [
            PromptModel(name, OLD, "1.0.0", metadata={"author": "alice"}),
            PromptModel(name, NEW, "1.1.0", metadata={"author": "alice"}),
        ]
    )
    sync(name)
    erin, bob, carol = (
        make_user("erin", "authors"),
        make_user("bob", "reviewers"),
        make_user("carol", "reviewers"),
    )
    promote(erin, bob, carol, name, "1.0.0")
    promote(erin, bob, carol, name, "1.1.0")

    # 1. Bob: the template page offers "Roll back to 1.0.0" (click 1), the form comes filled
    #    in with the version that left production last; he writes why and files (click 2).
    page, problems = sign_in(new_page, "bob")
    page.goto(f"/templates/{name}")
    page.get_by_role("link", name="Roll back to 1.0.0").click()
    page.wait_for_url(re.compile(r"/rollback/new\?"))
    choice = page.get_by_role("radio", name=re.compile(r"^1\.0\.0 in production from"))
    expect(choice).to_be_checked()
    expect(page.get_by_role("radio")).to_have_count(1)  # 1.1.0 holds production: not offered
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"rollback-form-{width}")
        assert sideways(page) <= 0, f"rollback form scrolls sideways at {width}px"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_label("Reason").fill("1.1.0 halved engagement overnight")
    page.get_by_role("button", name="File the rollback").click()
    page.wait_for_url(re.compile(r"/requests/\d+/$"))
    rollback_pk = int(re.search(r"/requests/(\d+)/$", page.url).group(1))
    expect(page.get_by_role("heading", level=1)).to_contain_text("production back to 1.0.0")
    expect(page.locator("#change-heading")).to_contain_text("What production will lose: 1.1.0")
    expect(page.locator("body")).not_to_contain_text("bumped enough")
    expect(page.locator(".why-not")).to_contain_text("You filed this request")

    # 2. Carol approves from the request's page; the workers move production at once.
    reviewer, reviewer_problems = sign_in(new_page, "carol")
    reviewer.goto(f"/requests/{rollback_pk}/")
    for width in WIDTHS:
        reviewer.set_viewport_size({"width": width, "height": 900})
        screenshot(reviewer, f"rollback-request-{width}")
        assert sideways(reviewer) <= 0, f"the request page scrolls sideways at {width}px"
    # At 390 px the decision comes first: Approve is within the first two screens.
    approve = reviewer.get_by_role("button", name="Approve", exact=True)
    assert approve.bounding_box()["y"] < 1800, "Approve is too far down at 390px"
    reviewer.set_viewport_size({"width": 1280, "height": 900})
    approve.click()
    expect(reviewer.locator("#request-run .status").first).to_have_text("Done")
    # The page was not reloaded: its lineage refreshed itself once the workers were done.
    expect(reviewer.locator("#lineage li.entry-rollback").first).to_contain_text(
        "Rollback to 1.0.0"
    )
    screenshot(reviewer, "rollback-done")

    # 3. The template page: 1.0.0 in production, and the lineage says why.
    reviewer.goto(f"/templates/{name}")
    entry = reviewer.locator("ol.timeline li.entry-rollback").first
    expect(entry).to_contain_text("Rollback to 1.0.0")
    expect(entry).to_contain_text("1.1.0 halved engagement overnight")
    expect(entry).to_contain_text("approved by carol")
    for width in WIDTHS:
        reviewer.set_viewport_size({"width": width, "height": 900})
        screenshot(reviewer, f"rollback-template-{width}")
        assert sideways(reviewer) <= 0, f"the template page scrolls sideways at {width}px"
    for path in ("/requests/?tab=all", "/operations/", f"/templates/{name}/-/versions/1.0.0"):
        reviewer.goto(path)
        assert sideways(reviewer) <= 0, f"{path} scrolls sideways at 390px"

    assert (
        mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "production", "1.1.0": "archived"}
    )
    assert get_registry().gateway.get_version(name, "1.0.0").stage.value == "production"
    assert problems + reviewer_problems == []
