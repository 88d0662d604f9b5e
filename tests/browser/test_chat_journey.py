"""A chat template in Chromium (issue 18): 1.1.0 changes the model configuration and adds a
response format; an author reads the diff (message by message, the configuration side by
side), files staging then production, reviewers approve, the workers (in process, Celery
eager) move it, and MLflow's production version carries the new configuration.
Screenshots at desktop width and 390 px go to var/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from registry_ui.prompt_model import PromptModel, get_registry
from tests.browser.test_journey import file_request, make_user, sign_in
from tests.browser.test_rollback_journey import WIDTHS, promote, sideways
from tests.web.reviews.test_approvals import mirror_stages, mlflow_stages, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]

MESSAGES = [
    {"role": "system", "content": "You write hooks for {audience}."},
    {"role": "user", "content": "Write a hook about {topic}."},
]
FORMAT = {"type": "object", "properties": {"hook": {"type": "string"}}, "required": ["hook"]}


def test_a_chat_template_with_a_new_model_configuration_is_reviewed_and_promoted(
    new_page, screenshot, unique_name
):
    name = unique_name("chat")
    PromptModel.register_many(
        [
            PromptModel(
                name,
                MESSAGES,
                "1.0.0",
                metadata={"author": "alice"},
                model_config={"model_name": "gpt-4o", "temperature": 0.7},
            ),
            PromptModel(
                name,
                MESSAGES,
                "1.1.0",
                metadata={"author": "alice"},
                model_config={"model_name": "gpt-4o", "temperature": 0.2, "max_tokens": 120},
                response_format=FORMAT,
            ),
        ]
    )
    sync(name)
    erin, bob, carol = (
        make_user("erin", "authors"),
        make_user("bob", "reviewers"),
        make_user("carol", "reviewers"),
    )
    promote(erin, bob, carol, name, "1.0.0")

    # 1. Erin reads 1.1.0 and what changes against 1.0.0.
    page, problems = sign_in(new_page, "erin")
    page.goto(f"/templates/{name}/-/versions/1.1.0")
    expect(page.locator("ol.messages li")).to_have_count(2)
    expect(page.locator("#model-config-heading")).to_be_visible()
    expect(page.locator("#response-format-heading")).to_be_visible()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"chat-version-{width}")
        assert sideways(page) <= 0, f"the chat version page scrolls sideways at {width}px"
    page.goto(f"/templates/{name}/-/diff?from=1.0.0&to=1.1.0")
    config = page.locator("table.config-diff")
    expect(config.locator("tr", has_text="temperature")).to_contain_text("0.7")
    expect(config.locator("tr", has_text="temperature")).to_contain_text("0.2")
    expect(config.locator("tr", has_text="max_tokens")).to_contain_text("changed")
    expect(page.locator("#bump-heading + dl")).to_contain_text("adds a response format")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"chat-diff-{width}")
        assert sideways(page) <= 0, f"the chat diff scrolls sideways at {width}px"
    # The editor keeps a chat template a chat template: its messages and settings as JSON.
    page.goto(f"/versions/new?template={name}")
    expect(page.locator("details.chat")).to_have_attribute("open", "")
    expect(page.get_by_label("Chat JSON")).to_have_value(re.compile('"max_tokens": 120'))
    expect(page.get_by_label("Template text", exact=True)).to_have_attribute("readonly", "")
    expect(page.locator("#version-template-input")).to_have_attribute("readonly", "")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"chat-editor-{width}")
        assert sideways(page) <= 0, f"the editor scrolls sideways at {width}px"
    page.set_viewport_size({"width": 1280, "height": 900})

    # 2. Staging, then production: bob approves staging; bob and carol production.
    page.goto(f"/templates/{name}/-/versions/1.1.0")
    staging_pk = file_request(page, "staging", "new settings, tested by hand")
    reviewer, reviewer_problems = sign_in(new_page, "bob")
    for pk in (staging_pk,):
        reviewer.goto(f"/requests/{pk}/")
        expect(reviewer.locator("table.config-diff")).to_contain_text("max_tokens")
        reviewer.get_by_role("button", name="Approve", exact=True).click()
        expect(reviewer.locator("#request-run .status").first).to_have_text("Done")
    page.goto(f"/templates/{name}/-/versions/1.1.0")
    production_pk = file_request(page, "production", "better hooks in staging")
    for who in ("bob", "carol"):
        approver, approver_problems = sign_in(new_page, who)
        approver.goto(f"/requests/{production_pk}/")
        approver.get_by_role("button", name="Approve", exact=True).click()
        expect(approver.locator("#request-review .approvals")).to_contain_text(who)
        reviewer_problems += approver_problems
    expect(approver.locator("#request-run .status").first).to_have_text("Done")
    screenshot(approver, "chat-request-done")

    # 3. Production holds 1.1.0 in the mirror and in MLflow, with the new configuration.
    assert (
        mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "archived", "1.1.0": "production"}
    )
    served = PromptModel.load_from_registry(name, stage="production")
    assert served.version == "1.1.0"
    assert served.model_config == {"model_name": "gpt-4o", "temperature": 0.2, "max_tokens": 120}
    assert served.response_format == FORMAT
    assert served.render_messages(audience="founders", topic="AI")[0]["content"] == (
        "You write hooks for founders."
    )
    assert get_registry().gateway.get_version(name, "1.1.0").stage.value == "production"
    assert problems + reviewer_problems == []
