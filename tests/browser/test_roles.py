"""Each role in Chromium: the menu and the pages' actions offer no link that answers 403,
authors and reviewers read the experiment on their template, and a line says why an action
is not offered. Screenshots at desktop width and 390 px go to var/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from registry_ui.web.experiments.definitions import VariantLine, create_experiment
from registry_ui.web.templatetags.navigation import nav_items_for
from tests.browser.test_journey import PASSWORD, make_user, sign_in
from tests.web.reviews.test_approvals import template

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]

# reader: signed in, no role (the cast in tests/web/conftest.py): reads, changes nothing.
ROLES = {"alice": "authors", "bob": "reviewers", "dave": "analysts", "reader": None}
# What only a role may do: none of it is offered to the reader.
CHANGES = ("/versions/new", "/requests/new", "/rollback/new", "/releases/new", "/experiments/new")
# Links that change something or leave the dashboard are not followed.
SKIPPED = ("/accounts/logout/", "/admin/", "/experiments/compare.csv")


def links(page) -> set[str]:
    """Same-site paths of every link in the header's menu and the page's main part."""
    hrefs = page.eval_on_selector_all(
        "header nav a[href], main a[href]", "els => els.map(e => e.getAttribute('href'))"
    )
    paths = set()
    for href in hrefs:
        parts = urlsplit(href)
        if parts.netloc or not parts.path.startswith("/") or href.startswith("#"):
            continue
        if any(parts.path.startswith(skip) for skip in SKIPPED):
            continue
        paths.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


@pytest.mark.parametrize("username", list(ROLES))
def test_no_role_is_offered_a_link_that_answers_403(username, new_page, screenshot, unique_name):
    name = unique_name("roles")
    template(name, [("1.0.0", "Hi {who}"), ("1.1.0", "Hello {who}")], [("1.0.0", "staging")])
    start = timezone.now() - timedelta(hours=1)
    create_experiment(
        actor="dave",
        template_name=name,
        key="roles-test",
        title="Hello or hi",
        variants=[VariantLine("control", "1.0.0", 50), VariantLine("treatment", "1.1.0", 50)],
        metric="engagement",
        kind="rate",
        min_samples=100,
        target=None,
        start_at=start,
        stop_at=start + timedelta(days=14),
    )
    if ROLES[username] is None:
        user = User.objects.create_user(username, password=PASSWORD)
    else:
        user = make_user(username, ROLES[username])
    page, problems = sign_in(new_page, username)
    menu = [item.label for item in nav_items_for(user)]

    seen: dict[str, int] = {}
    for start_page in (
        "/",
        f"/templates/{name}",
        f"/templates/{name}/-/versions/1.1.0",
        "/requests/",
        "/experiments/",
    ):
        if start_page in ("/requests/", "/experiments/") and start_page not in {
            item.url for item in nav_items_for(user)
        }:
            continue  # not in this role's menu: the 403 check below covers the menu
        page.goto(start_page)
        for path in links(page) - set(seen):
            seen[path] = page.request.get(path).status
    assert len(seen) >= (10 if username == "reader" else 15), sorted(seen)  # all followed
    refused = sorted(path for path, status in seen.items() if status == 403)
    assert refused == [], f"{username} is offered links that answer 403: {refused}"
    if username == "reader":
        assert menu == ["Templates", "Native prompts", "Operations", "Audit log"]
        for path in (f"/templates/{name}", f"/templates/{name}/-/versions/1.0.0"):
            page.goto(path)
            for action in CHANGES:
                expect(page.locator(f"main a[href^='{action}']")).to_have_count(0)
            expect(page.locator("main form[method=post]")).to_have_count(0)
        screenshot(page, "roles-reader-version-1280")
        assert problems == []
        return
    assert "Experiments" in menu  # authors and reviewers read results too

    # The experiment on the template is listed for every role, read-only but for analysts.
    page.goto(f"/templates/{name}")
    expect(page.get_by_role("link", name="Hello or hi")).to_be_visible()
    page.goto("/experiments/roles-test/")
    stop = page.get_by_role("button", name="Stop it")
    if username == "dave":
        expect(stop).to_be_visible()
    else:
        expect(stop).to_have_count(0)
    page.goto("/experiments/")
    if username != "dave":
        expect(page.locator(".why-not")).to_contain_text("Defining and stopping experiments")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/templates/{name}")
        screenshot(page, f"roles-{username}-template-{width}")
        page.goto("/requests/")
        screenshot(page, f"roles-{username}-requests-{width}")
        page.goto(f"/templates/{name}/-/versions/1.0.0")
        screenshot(page, f"roles-{username}-version-{width}")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert problems == []


def test_the_analyst_compares_two_versions_and_downloads_the_days(
    new_page, screenshot, unique_name
):
    from tests.web.experiments.test_experiments import START, ingest, outcomes

    name = unique_name("compare")
    template(name, [("1.1.0", "Hi {who}"), ("1.2.0", "Hello {who}")], [("1.1.0", "staging")])
    create_experiment(
        actor="dave",
        template_name=name,
        key="hook-test",
        title="Hello or hi",
        variants=[VariantLine("control", "1.1.0", 50), VariantLine("treatment", "1.2.0", 50)],
        metric="engagement",
        kind="rate",
        min_samples=100,
        target=None,
        start_at=START,
        stop_at=START + timedelta(days=14),
    )
    for day, (control, treatment) in enumerate([(30, 36), (31, 35), (29, 37), (30, 34)]):
        ingest(outcomes("control", control, 500, day) + outcomes("treatment", treatment, 500, day))
    make_user("dave", "analysts")
    page, problems = sign_in(new_page, "dave")

    page.goto("/experiments/compare")
    page.get_by_label("Template", exact=True).fill(name)
    page.get_by_role("button", name="Show its versions").click()
    expect(page.get_by_label("Version", exact=True)).to_have_value("1.2.0")
    expect(page.get_by_label("against")).to_have_value("1.1.0")
    page.get_by_role("button", name="Compare").click()
    verdict = page.locator("p.verdict").first
    expect(verdict).to_contain_text("1.2.0 is ahead of 1.1.0 by 1.10 pts")
    expect(page.locator("polygon.band")).to_have_count(2)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the daily figures (CSV)").click()
    assert download.value.suggested_filename.endswith("_1.2.0_vs_1.1.0.csv")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"compare-{width}")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.goto("/experiments/hook-test/")
    screenshot(page, "experiment-390")
    assert problems == []
