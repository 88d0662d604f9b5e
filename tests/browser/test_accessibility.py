"""Every page of the journey, on the demo's own data, at desktop width, at 390 px and in dark
mode: axe-core finds no violation, no page scrolls sideways on a phone, dark mode applies,
and the keyboard helpers work (a skip link, a visible focus ring, "/" to search).

Screenshots of each page in each mode are saved under var/screenshots/ (look at them).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from registry_ui import prompt_model
from registry_ui.web.management.commands import load_demo_data
from registry_ui.web.models import Batch, PromotionRequest
from tests.browser.conftest import axe_violations, sideways_scroll

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]
PASSWORD = "correct-horse-9"
HOOK = "persona/entrepreneur/hook-generator"
MODES = {
    "desktop": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "light"},
    "phone": {"viewport": {"width": 390, "height": 844}, "color_scheme": "light"},
    "dark": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"},
}


@pytest.fixture
def demo(tmp_path, mlflow_sqlite_uri, monkeypatch):
    """The demo data, loaded the way make run loads it, in a registry of its own."""
    monkeypatch.setattr(load_demo_data, "CREDENTIALS_FILE", tmp_path / "demo-credentials.txt")
    prompt_model.configure_mlflow_with_registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        call_command("load_demo_data", stdout=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
        for user in User.objects.all():
            user.set_password(PASSWORD)
            user.save()
        yield
    finally:
        prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def journey() -> dict[str, str]:
    """The pages of the journey, by the name of their screenshot."""
    waiting = PromotionRequest.objects.filter(status="open").order_by("pk").first()
    batch = Batch.objects.order_by("pk").last()  # the demo's last approved move
    return {
        "list": "/",
        "folder": "/?folder=persona/entrepreneur",
        "template": f"/templates/{HOOK}",
        "version": f"/templates/{HOOK}/-/versions/1.2.0",
        "diff": f"/templates/{HOOK}/-/diff?from=1.1.0&to=1.2.0",
        "new-template": "/versions/new",
        "new-version": f"/versions/new?template={HOOK}",
        "requests": "/requests/",
        "request": f"/requests/{waiting.pk}/",
        "request-new": "/requests/new",
        "rollback-new": f"/rollback/new?template={HOOK}",
        "operations": "/operations/",
        "batch": f"/operations/batches/{batch.pk}",
        "audit": "/audit/",
        "experiments": "/experiments/",
        "experiment": "/experiments/hook-cta-own-line/",
        "compare": f"/experiments/compare?template={HOOK}&version=1.2.0&against=1.1.0",
        "native-prompts": "/native-prompts/",
        "api-tokens": "/api/tokens/",
        "mlflow-problems": "/mlflow-problems/",
        "password": "/accounts/password/",
    }


def signed_in(browser, live_server, username: str, mode: str):
    context = browser.new_context(base_url=live_server.url, **MODES[mode])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return context, page


@pytest.mark.usefixtures("demo")
def test_every_page_passes_axe_fits_a_phone_and_follows_dark_mode(browser, live_server, screenshot):
    pages = journey()
    problems = []
    for mode in MODES:
        context, page = signed_in(browser, live_server, "bob", mode)
        try:
            for name, path in pages.items():
                response = page.goto(path)
                if response.status != 200:
                    problems.append(f"{mode} {name}: {path} answers {response.status}")
                page.wait_for_load_state("networkidle")
                screenshot(page, f"a11y-{name}-{mode}")
                problems += [f"{mode} {name}: {v}" for v in axe_violations(page)]
                if mode == "phone" and (over := sideways_scroll(page)):
                    problems.append(f"phone {name}: scrolls sideways, {over}")
                if mode == "dark":
                    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                    if background != "rgb(20, 24, 31)":
                        problems.append(f"dark {name}: the page stays light ({background})")
        finally:
            context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.usefixtures("demo")
def test_the_sign_in_page_passes_axe_in_every_mode(browser, live_server, screenshot):
    problems = []
    for mode in MODES:
        context = browser.new_context(base_url=live_server.url, **MODES[mode])
        page = context.new_page()
        page.goto("/accounts/login/")
        screenshot(page, f"a11y-sign-in-{mode}")
        problems += [f"{mode}: {v}" for v in axe_violations(page)]
        if mode == "phone" and (over := sideways_scroll(page)):
            problems.append(f"phone: scrolls sideways, {over}")
        context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.usefixtures("demo")
def test_the_header_folds_on_a_phone_and_the_keyboard_helpers_work(browser, live_server):
    context, page = signed_in(browser, live_server, "alice", "phone")
    try:
        # A compact header: the menu is folded to one button and opens on a tap.
        menu = page.locator("details.site-menu")
        assert not menu.evaluate("m => m.open")
        assert page.locator("header.site").bounding_box()["height"] < 120
        page.get_by_text("Menu", exact=True).click()
        assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests")
        assert page.get_by_role("link", name="Requests").is_visible()

        # "/" focuses the search; the skip link is the first stop and leads to the content.
        page.goto("/requests/")
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "site-search"
        page.goto("/")
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "filter-q"
        page.goto("/requests/")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        assert skip.is_visible()
        # The focus ring: a 3 px outline in the text colour (about 15:1 on white).
        outline = page.evaluate(
            "getComputedStyle(document.activeElement).outlineColor + ' '"
            " + getComputedStyle(document.activeElement).outlineWidth"
        )
        assert outline == "rgb(29, 36, 48) 3px"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
    finally:
        context.close()
