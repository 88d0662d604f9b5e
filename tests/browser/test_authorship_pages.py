"""What a version's page says of its authors, in Chromium at desktop width and at 390 px: an
author written in MLflow naming no account, and a version a CI account registered for a
person. Screenshots go to var/screenshots/."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.auth.roles import AUTHORS, CI
from registry_ui.web.prompts.mirror import mirror_template
from tests.browser.test_journey import make_user, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.mark.parametrize("width", [1280, 390])
def test_a_reader_sees_who_wrote_a_version(width, new_page, screenshot, unique_name, tmp_path):
    outside, by_ci = unique_name("outside"), unique_name("ci")
    PromptModel.register_many(
        [PromptModel(outside, "Hi {who}", "1.0.0", metadata={"author": "Robert"})]
    )
    mirror_template(outside, get_registry().gateway.list_versions(outside), source="external")
    make_user("erin", AUTHORS)
    make_user("ci-bot", CI)
    (tmp_path / "t.yaml").write_text(
        f"name: {by_ci}\nversion: 1.0.0\ntemplate: 'Hi {{who}}'\nmetadata:\n  author: erin\n"
    )
    call_command("register_templates", str(tmp_path), "--user", "ci-bot", "--on-behalf-of", "erin")
    page, problems = sign_in(new_page, "erin")
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(f"/templates/{outside}/-/versions/1.0.0")
    assert page.get_by_text("no account has this name").is_visible()
    screenshot(page, f"version-author-unresolved-{width}")
    page.goto(f"/templates/{by_ci}/-/versions/1.0.0")
    assert page.get_by_text("(registered by ci-bot for erin)").is_visible()
    screenshot(page, f"version-author-ci-{width}")
    assert problems == []
