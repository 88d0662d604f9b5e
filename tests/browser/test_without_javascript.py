"""Every link and form works without JavaScript: the same journey steps, script disabled."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User

from registry_ui.web.models import PromotionRequest
from registry_ui.web.reviews import services as reviews
from tests.web.reviews.test_approvals import template

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]
PASSWORD = "correct-horse-9"


def member(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_search_check_file_and_approve_with_script_disabled(browser, live_server, unique_name):
    name = unique_name("nojs")
    template(name, [("1.0.0", "Hi {who}")])
    erin = member("erin", "authors")
    member("bob", "reviewers")
    request = reviews.file_request(
        erin, template_name=name, version="1.0.0", target="staging", justification="ready"
    )
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("bob")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        assert page.evaluate("typeof htmx") == "undefined"  # really no script

        # Search: the form submits as a plain GET.
        page.get_by_label("Search names").fill(name)
        page.get_by_label("Search names").press("Enter")
        page.wait_for_url(re.compile(r"\?.*q="))
        page.get_by_role("link", name=name.rsplit("/", 1)[1]).first.click()
        page.wait_for_url(re.compile(rf"/templates/{re.escape(name)}$"))

        # The editor's Check button posts the draft and answers with the whole page.
        page.goto(f"/versions/new?template={name}")
        page.get_by_label("Template text").fill("Hi {who")
        page.get_by_role("button", name="Check").click()
        assert "line 1, column 4" in page.locator("#version-check").inner_text()

        # The inbox link, the request, and an approval that redirects back to the request.
        page.goto("/")
        page.locator("#review-badge").get_by_role("link").click()
        page.get_by_role("link", name=f"#{request.pk}", exact=True).click()
        page.get_by_role("button", name="Approve", exact=True).click()
        page.wait_for_url(re.compile(rf"/requests/{request.pk}/$"))
        assert "1 of 1 required" in page.locator("#request-review").inner_text()
        assert page.locator("#review-badge").inner_text() == ""  # nothing left to review
    finally:
        context.close()
    assert PromotionRequest.objects.get(pk=request.pk).status == "done"  # carried out inline
