"""Writing in the browser: a new template from its folder, its metadata as fields, errors
marked in the editor at their line and column, filing turned off until they are fixed, then
the page after filing; and a new version whose suggested number follows the change."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from registry_ui.prompt_model import PromptModel
from registry_ui.web.models import TemplateVersion
from tests.browser.conftest import axe_violations, sideways_scroll
from tests.support.mirror_rows import METADATA
from tests.web.reviews.test_approvals import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks", "default_metadata_policy"),
]
PASSWORD = "correct-horse-9"


def template(name: str, text: str) -> None:
    """A template's first version, with the metadata the policy asks for, in the mirror."""
    PromptModel.register_many([PromptModel(name, text, "1.0.0", metadata=METADATA)])
    sync(name)


def sign_in_as_an_author(new_page, width: int = 1280):
    user = User.objects.create_user("alice", password=PASSWORD)
    user.groups.add(Group.objects.get(name="authors"))
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page, problems


def type_in_editor(page, text: str):
    page.locator(".template-editor .CodeMirror-code").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def test_a_new_template_is_written_in_its_folder_and_filed(new_page, unique_name, screenshot):
    folder = unique_name("writing").rsplit("/", 1)[0] + "/onboarding"
    template(f"{folder}/welcome", "Welcome, {who}")
    page, problems = sign_in_as_an_author(new_page)

    page.goto(f"/?folder={folder}")
    page.get_by_role("link", name=re.compile("^New template in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New template")
    assert page.get_by_label("Template name").input_value() == f"{folder}/"
    assert page.get_by_label("Author").input_value() == "alice"

    page.get_by_label("Template name").fill(f"{folder}/reminder")
    type_in_editor(page, "Hi {name}, your trial ends on {day")
    # The error is listed at line:column and marked in the editor; filing waits for a fix.
    check = page.locator("#version-check")
    expect(check).to_contain_text("line 1, column 31")
    expect(page.locator(".template-editor .error-at")).to_have_count(1)
    expect(page.locator(".template-editor .cm-variable").first).to_have_text("{name}")
    expect(page.locator("#file-version")).to_be_disabled()
    screenshot(page, "writing-new-template-error")
    assert axe_violations(page) == []

    type_in_editor(page, "}.")
    page.get_by_label("Purpose").fill("Reminds a user that the trial ends")
    page.get_by_label("Tested on").fill("email, push")
    page.get_by_label("Metric 1: name").fill("open_rate")
    page.get_by_label("Metric 1: number").fill("0.4")
    expect(check).to_contain_text("No problems found")
    expect(page.locator(".template-editor .error-at")).to_have_count(0)
    expect(page.locator("#file-version")).to_be_enabled()
    assert page.get_by_label("Version").input_value() == "1.0.0"
    screenshot(page, "writing-new-template")

    page.get_by_role("button", name="File this template").click()
    page.wait_for_url(re.compile(r"/versions/filed/\d+$"))
    expect(page.locator("#filing")).to_contain_text("is registered, in dev")
    expect(page.get_by_role("link", name="Request staging")).to_be_visible()
    screenshot(page, "writing-filed")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Open 1.0.0").click()
    page.wait_for_url(re.compile(r"/-/versions/1\.0\.0$"))

    filed = TemplateVersion.objects.get(template__name=f"{folder}/reminder")
    assert filed.text == "Hi {name}, your trial ends on {day}."
    assert filed.metadata == {
        "author": "alice",
        "purpose": "Reminds a user that the trial ends",
        "tested_on": ["email", "push"],
        "performance_metrics": {"open_rate": 0.4},
    }
    assert problems == []


def test_the_suggested_version_follows_the_change_as_you_type(new_page, unique_name, screenshot):
    name = unique_name("suggest")
    template(name, "Hi {who}")
    page, problems = sign_in_as_an_author(new_page, width=390)

    page.goto(f"/versions/new?template={name}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("New version of")
    version = page.get_by_label("Version")
    assert version.input_value() == "1.0.1"

    type_in_editor(page, " from {city}")  # a new variable: a minor bump
    expect(version).to_have_value("1.1.0")
    expect(page.locator("#version-check")).to_contain_text("Suggested version: 1.1.0")

    version.fill("3.0.0")  # the author's own number is kept; the suggestion is one click away
    type_in_editor(page, "!")
    take = page.get_by_role("button", name="Use 1.1.0")
    expect(take).to_be_visible()
    assert version.input_value() == "3.0.0"
    take.click()
    expect(version).to_have_value("1.1.0")
    expect(page.get_by_role("button", name="Use 1.1.0")).to_have_count(0)
    assert sideways_scroll(page) == ""
    screenshot(page, "writing-suggested-version-phone")
    assert problems == []
