"""The whole journey in a real browser, carried out by real Celery workers on `mlflow server`.

An author writes a new version in the editor, files it, looks at the diff and asks for
staging, then production; reviewers sign in in turn and approve from their inbox; the
request's page shows the workers' progress until it is done; the template page then shows
the new production version and the lineage entry that explains it.
"""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from registry_ui.prompt_model import get_registry
from registry_ui.web.models import Batch, PromotionRequest, TemplateVersion
from tests.web.reviews.test_approvals import mirror_stages, mlflow_stages, template

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis for real Celery workers: set REDIS_URL (CI does)",
    ),
]

PASSWORD = "correct-horse-9"
OLD_TEXT = "Hello {name}, your balance is ${balance:.2f}."
NEW_TEXT = "Hello {name}, your balance today is ${balance:.2f}."
# A CSP violation names the element it came from (the console names only the script).
CSP_REPORTER = """document.addEventListener("securitypolicyviolation", (e) => console.error(
    "CSP violation:", e.violatedDirective, e.target && e.target.outerHTML
        ? e.target.outerHTML.slice(0, 300) : e.blockedURI))"""
WORKER_TIMEOUT_MS = 120_000  # a cold worker imports MLflow and talks to the server


def make_user(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=group))
    return user


def sign_in(new_page, username: str):
    page = new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"{page.url} {m.location}: {m.text}") if m.type == "error" else None
        ),
    )
    page.add_init_script(CSP_REPORTER)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page, problems


def approve_from_inbox(new_page, reviewer: str, request_pk: int, screenshot=None):
    """Sign in, follow the badge to the inbox, open the request, approve it in place."""
    page, problems = sign_in(new_page, reviewer)
    badge = page.locator("#review-badge")
    expect(badge).to_contain_text("1 waiting for you")
    badge.get_by_role("link").click()
    page.get_by_role("link", name=f"#{request_pk}", exact=True).click()
    page.wait_for_url(re.compile(rf"/requests/{request_pk}/$"))
    if screenshot:
        screenshot(page, "review")
    page.get_by_label("Comment (optional)").fill(f"Looks right to {reviewer}.")
    page.get_by_role("button", name="Approve", exact=True).click()
    # Swapped in place by htmx: the thread shows the approval, the badge counts one less.
    expect(page.locator("#request-review")).to_contain_text(f"Looks right to {reviewer}.")
    expect(page.locator("#request-review .approvals")).to_contain_text(reviewer)
    expect(badge).not_to_contain_text("waiting for you")
    assert page.url.endswith(f"/requests/{request_pk}/")  # no navigation: swapped in place
    return page, problems


def file_request(page, target: str, justification: str) -> int:
    """From the version's page: the link pre-fills the form; only the why is left to write."""
    page.get_by_role("link", name=f"Request {target}").click()
    expect(page.get_by_label("Move it to")).to_have_value(target)
    page.get_by_label("Justification").fill(justification)
    page.get_by_role("button", name="File the request").click()
    page.wait_for_url(re.compile(r"/requests/\d+/$"))
    return int(re.search(r"/requests/(\d+)/$", page.url).group(1))


def wait_until_done(page, request_pk: int) -> None:
    """The request's page polls while the workers carry it out, and stops when it is done."""
    page.goto(f"/requests/{request_pk}/")
    run = page.locator("#request-run")
    expect(run.locator(".status").first).to_have_text("Done", timeout=WORKER_TIMEOUT_MS)
    expect(run.locator("progress")).to_have_attribute("value", "1")
    expect(run).to_contain_text("Succeeded")
    expect(run).not_to_have_attribute("hx-trigger", re.compile("every"))  # polling stopped


def test_author_to_production_through_the_inbox(new_page, screenshot, start_worker, unique_name):
    start_worker()  # points this process at the session's `mlflow server` too
    name = unique_name("journey")
    template(name, [("1.0.0", OLD_TEXT)], stages=[("1.0.0", "staging"), ("1.0.0", "production")])
    make_user("erin", "authors")
    make_user("bob", "reviewers")
    make_user("carol", "reviewers")

    # 1. The author writes 1.0.1 in the editor, from the latest version.
    author, author_problems = sign_in(new_page, "erin")
    author.goto(f"/templates/{name}")
    author.get_by_role("link", name="New version", exact=True).click()
    expect(author.get_by_label("Version")).to_have_value("1.0.1")  # suggested
    # The text in the code editor (CodeMirror over the form's textarea, kept in step).
    expect(author.locator("textarea#version-template")).to_have_value(OLD_TEXT)
    author.locator(".template-editor .CodeMirror-code").click()
    author.keyboard.press("Control+A")
    author.keyboard.type(NEW_TEXT)
    check = author.locator("#version-check")
    expect(check).to_contain_text("No problems found against 1.0.0")  # live, as typed
    expect(check).to_contain_text("Suggested version: 1.0.1")
    author.get_by_label("Reason").fill("clearer wording")
    screenshot(author, "new-version")
    author.get_by_role("button", name="File this version").click()
    # The page after filing follows the worker, then offers the version and staging.
    author.wait_for_url(re.compile(r"/versions/filed/\d+$"))
    expect(author.locator("#filing")).to_contain_text(
        f"{name} 1.0.1 is registered, in dev", timeout=WORKER_TIMEOUT_MS
    )
    expect(author.get_by_role("link", name="Request staging")).to_be_visible()
    screenshot(author, "batch")
    assert Batch.objects.get().status == "succeeded"
    assert get_registry().gateway.get_version(name, "1.0.1").stage.value == "dev"

    # 2. The diff of the new version against the one it would replace.
    author.goto(f"/templates/{name}/-/versions/1.0.1")
    author.get_by_role("link", name="Compare with 1.0.0").click()
    author.wait_for_url(re.compile(r"/-/diff\?from=1\.0\.0&to=1\.0\.1"))
    expect(author.locator("table.diff:not(.narrow-only) ins")).to_contain_text("today")
    expect(author.locator("p.breaks")).to_contain_text("Does not break callers")
    screenshot(author, "diff")

    # 3. Staging first (a stage is never skipped): one reviewer.
    author.goto(f"/templates/{name}/-/versions/1.0.1")
    staging_pk = file_request(author, "staging", "clearer wording, same variables")
    reviewer, reviewer_problems = approve_from_inbox(new_page, "bob", staging_pk)
    wait_until_done(reviewer, staging_pk)

    # 4. Then production: two reviewers, in turn.
    author.goto(f"/templates/{name}/-/versions/1.0.1")
    production_pk = file_request(author, "production", "reads better in staging")
    first, first_problems = approve_from_inbox(new_page, "bob", production_pk)
    expect(first.locator("#request-run .status").first).to_have_text("Open")  # 1 of 2
    second, second_problems = approve_from_inbox(
        new_page, "carol", production_pk, screenshot=screenshot
    )
    wait_until_done(second, production_pk)
    screenshot(second, "request-done")

    # 5. The template page: the new production version and the lineage entry explaining it.
    author.goto(f"/templates/{name}")
    production = author.locator("section.holder", has=author.locator("#holder-production"))
    expect(production).to_contain_text("1.0.1")
    expect(production).to_contain_text(NEW_TEXT)
    entry = author.locator("ol.timeline li.entry-stage").filter(has_text="staging to production")
    expect(entry.first).to_contain_text("1.0.1")
    expect(entry.first).to_contain_text("reads better in staging")
    expect(entry.first).to_contain_text(f"request #{production_pk}")
    expect(entry.first).to_contain_text("approved by bob, carol")
    screenshot(author, "template")
    for url, shot in (("/", "templates"), ("/operations/", "operations"), ("/audit/", "audit")):
        author.goto(url)
        screenshot(author, shot)

    assert (
        mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "archived", "1.0.1": "production"}
    )
    assert PromotionRequest.objects.get(pk=production_pk).status == "done"
    assert (
        TemplateVersion.objects.get(template__name=name, version="1.0.1").author == "erin"
    )  # not 1.0.0's
    problems = author_problems + reviewer_problems + first_problems + second_problems
    assert problems == []
