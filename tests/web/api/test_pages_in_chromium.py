"""The API's pages in Chromium: the docs page (Swagger UI from the site's own static files,
nothing from a CDN, no Content-Security-Policy violation) and the API tokens page, on a
desktop and at 390 px."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from tests.browser.test_journey import CSP_REPORTER

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long enough password 42"


def watched(page):
    problems, hosts = [], set()
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    page.add_init_script(CSP_REPORTER)
    return problems, hosts


def test_the_docs_page_loads_swagger_ui_from_the_site_only(new_page, live_server, screenshot):
    page = new_page()
    problems, hosts = watched(page)

    page.goto("/api/v1/docs")

    expect(page.get_by_text("/api/v1/templates/{name}/-/diff").first).to_be_visible()
    assert hosts == {urlsplit(live_server.url).netloc}, hosts
    assert problems == []
    screenshot(page, "api-docs")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_tokens_page_makes_shows_once_and_revokes(new_page, screenshot, width):
    User.objects.create_user("tess", password=PASSWORD)
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    problems, _ = watched(page)
    page.goto("/accounts/login/?next=/api/tokens/")
    page.get_by_label("Username").fill("tess")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/api/tokens/")

    page.get_by_label("Name (where you use it)").fill("laptop")
    page.locator("input[name=scopes][value=request]").check()
    page.get_by_role("button", name="Make the token").click()

    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("rui_api_")
    screenshot(page, f"api-tokens-made-{width}")
    page.goto("/api/tokens/")
    expect(page.get_by_text(token)).to_have_count(0)
    expect(page.get_by_role("cell", name="read, request")).to_be_visible()
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_role("cell", name="revoked", exact=False)).to_be_visible()
    wide = page.evaluate(WIDEST)
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, wide
    assert problems == []
    screenshot(page, f"api-tokens-{width}")


WIDEST = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"""
