"""Sign in with a real browser; the page runs under the CSP without violations."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_in_reaches_the_templates_without_csp_violations(new_page, screenshot):
    user = User.objects.create_user("bob", password="correct-horse-9")
    user.groups.add(Group.objects.get(name="reviewers"))
    page = new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))

    page.goto("/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("correct-horse-9")
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    assert page.locator("header").get_by_text("bob").is_visible()
    assert page.evaluate("typeof htmx") == "object"  # htmx loaded from our own static files
    assert "{#" not in page.inner_text("body")  # no template comment leaks as text
    screenshot(page, "templates-empty")  # the empty state: what to do first
    assert problems == []
