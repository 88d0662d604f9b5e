"""Hostile text everywhere a user can put text, shown on every page: nothing runs.

Prompt text, metadata keys and values, a batch's reason, a request's justification,
comments, a saved sample and query parameters all carry payloads: a <script> element, an
onerror handler, a javascript: link, htmx attributes (hx-get with hx-trigger=load, hx-on:)
and an <svg onload>. On every page the test checks that:
- the payload is shown as text (so the page did render it: the test cannot pass vacuously);
- no script ran (each payload would set window.__xss);
- no htmx request left for the probe URL the payloads point at, and no element carries the
  payloads' attributes (the browser never parsed them as markup);
- there is no javascript: link, and the page logged no error;
- and, while it is there, that every control on the page has a label.

The Content-Security-Policy would also block inline scripts; these checks hold without it:
the escaping is what is tested (htmx attributes are not stopped by a CSP at all).
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth.models import Group, User

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import Batch, PromotionRequest, TemplateVersion
from registry_ui.web.prompts import drafts, samples
from registry_ui.web.prompts.forms import NewVersionForm
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import services as reviews

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]

PASSWORD = "correct-horse-9"
PROBE = "/xss-probe"  # every htmx payload points here: no request may reach it
SCRIPT = "<script>window.__xss = 'script'</script>"
ONERROR = "<img src=x onerror=\"window.__xss = 'onerror'\">"
LINK = "<a href=\"javascript:window.__xss = 'link'\">click me</a>"
HX_GET = f'<div hx-get="{PROBE}?via=hx-get" hx-trigger="load">hx-get</div>'
HX_ON = (
    f"<button hx-on:htmx:load=\"window.__xss = 'hx-on'\" "
    f"hx-on::load=\"fetch('{PROBE}')\">b</button>"
)
SVG = "<svg onload=\"window.__xss = 'svg'\"></svg>"
PAYLOADS = [SCRIPT, ONERROR, LINK, HX_GET, HX_ON, SVG]
ALL = " ".join(PAYLOADS)
# Prompt text is str.format text: braces are fields, so the payloads carry none.
TEXT_OLD = "Hello {name}! " + ALL
TEXT_NEW = "Hello {name}, see {link}! " + ALL
# Our pages use hx-get themselves: only the payloads' own attributes mark parsed markup.
MARKER_ATTRIBUTES = (
    '[onerror], [onload], [hx-get*="xss-probe"], [hx-on\\:htmx\\:load], [hx-on\\:\\:load]'
)


def make_user(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def hostile(unique_name):
    """A template whose versions, batch, request, comments and sample all carry payloads."""
    alice = make_user("alice", "authors")
    erin = make_user("erin", "authors")
    bob = make_user("bob", "reviewers")
    name = unique_name("xss")
    metadata = {
        "author": "alice",
        "purpose": ALL,
        f"note {SCRIPT}": LINK,
        "link": "javascript:alert(1)",
    }
    PromptModel.register_many([PromptModel(name, TEXT_OLD, "1.0.0", metadata=metadata)])
    get_registry().promote(name, "1.0.0", "staging")  # the template page shows its text
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    # 1.1.0 through the dashboard's own service: a batch and its audit events with payloads.
    form = NewVersionForm(
        {
            "name": name,
            "version": "1.1.0",  # adds a variable: a minor bump
            "template": TEXT_NEW,
            "metadata": json.dumps({**metadata, "purpose": f"new {ALL}"}),
            "reason": f"reason {ALL}",
        }
    )
    assert form.is_valid(), form.errors
    batch = drafts.version_file(alice, **form.filing_arguments())
    batch.refresh_from_db()
    assert batch.status == Batch.Status.SUCCEEDED, batch
    version = TemplateVersion.objects.get(template__name=name, version="1.1.0")
    request = reviews.file_request(
        erin, template_name=name, version="1.1.0", target="staging", justification=f"why {ALL}"
    )
    reviews.add_comment(bob, request.pk, text=f"comment {ALL}")
    samples.sample_save(alice, version=version, name="example", raw={"name": SCRIPT, "link": LINK})
    return {"name": name, "batch": batch.pk, "request": request.pk}


def pages(hostile) -> list[tuple[str, str]]:
    """Every page, with what each must show as text."""
    name, q = hostile["name"], quote(hostile["name"], safe="/")
    versions = f"/templates/{q}/-/versions"
    return [
        ("/?" + urlencode({"q": name}), name),
        ("/?" + urlencode({"q": SCRIPT, "author": ONERROR, "tag": HX_GET}), ""),  # see below
        (f"/templates/{q}", SCRIPT),
        (f"{versions}/1.0.0", SCRIPT),
        (f"{versions}/1.1.0?sample=example", "window.__xss = 'link'"),
        (f"{versions}/1.1.0?" + urlencode({"v.name": HX_GET, "v.link": HX_ON}), HX_GET),
        (f"/templates/{q}/-/diff?from=1.0.0&to=1.1.0", SCRIPT),
        (f"/templates/{q}/-/diff?from=1.0.0&to=1.1.0&view=inline", SCRIPT),
        (f"/templates/{q}/-/diff?" + urlencode({"from": SCRIPT, "to": HX_GET}), SCRIPT),
        (f"/versions/new?template={quote(name)}", ""),  # payloads are in the editor's fields
        ("/requests/?tab=all", SCRIPT),
        (f"/requests/{hostile['request']}/", SCRIPT),
        ("/operations/", ""),
        (f"/operations/batches/{hostile['batch']}", SCRIPT),
        (f"/audit/?template={quote(name)}", SCRIPT),
        ("/audit/?" + urlencode({"actor": SCRIPT, "action": HX_GET, "source": ONERROR}), ""),
    ]


# Controls without an accessible name (a <label>, aria-label(ledby), a button's text, a title).
UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')].filter((el) => !(
    (el.labels && el.labels.length) || el.getAttribute("aria-label")
    || el.getAttribute("aria-labelledby") || el.title
    || (el.tagName === "BUTTON" && el.textContent.trim()))).map((el) => el.outerHTML)"""


def test_payloads_run_nothing_on_any_page(new_page, live_server, hostile, screenshot):
    page = new_page()
    probes, problems = [], []
    page.on("request", lambda r: PROBE in r.url and probes.append(r.url))
    # Bad filters and versions in a URL are answered 400 with the page saying what is wrong;
    # the browser logs each such answer, which is not a problem here.
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and "status of 400 (Bad Request)" not in m.text
            and problems.append(f"{page.url}: {m.text}")
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)

    for url, shown in pages(hostile):
        response = page.goto(url)
        assert response.status in (200, 400), f"{url}: {response.status}"
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # a hx-trigger="load" would have fired by now
        where = f"on {url}"
        assert page.evaluate("window.__xss") is None, where
        assert page.locator(MARKER_ATTRIBUTES).count() == 0, where
        assert page.locator("script:not([src])").count() == 0, where
        assert page.locator('a[href^="javascript:" i]').count() == 0, where
        assert page.evaluate(UNLABELLED) == [], f"{where}: controls without a label"
        if shown:
            text = page.locator("main").text_content()  # folded <details> too
            assert shown in text, f"{where}: the payload is not shown as text"
        # Clicking what looks like the link does nothing either.
        text_link = page.get_by_text("click me").first
        if text_link.count() and text_link.is_visible():
            text_link.click()
            assert page.evaluate("window.__xss") is None, where

    # Filters echo what was typed into their fields, as text.
    page.goto("/?" + urlencode({"q": SCRIPT}))
    assert page.get_by_label("Search names").input_value() == SCRIPT

    # The editor keeps the payloads as the text of its fields, and its live check shows them.
    page.goto(f"/versions/new?template={quote(hostile['name'])}")
    # The form's textarea under the code editor, and the metadata's JSON view.
    assert SCRIPT in page.locator("textarea#version-template").input_value()
    metadata = json.loads(page.locator("textarea#version-metadata").input_value())
    assert metadata[f"note {SCRIPT}"] == LINK
    keys = page.locator('input[name="extra_key"]').evaluate_all("all => all.map(i => i.value)")
    assert f"note {SCRIPT}" in keys  # and as a field, its value text
    page.locator(".template-editor .CodeMirror-code").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(TEXT_NEW + " {" + SCRIPT)  # an error naming it
    page.locator("#version-check").get_by_text("problem").wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.locator(MARKER_ATTRIBUTES).count() == 0

    # The review section swapped in place by htmx (a new comment) stays inert too.
    page.goto(f"/requests/{hostile['request']}/")
    page.locator("#comment-text").fill(f"again {ALL}")
    page.get_by_role("button", name="Comment", exact=True).click()
    page.locator("#request-review").get_by_text("again <script>").wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.locator(MARKER_ATTRIBUTES).count() == 0
    screenshot(page, "xss-request")

    assert probes == []
    assert problems == []
    assert PromotionRequest.objects.get(pk=hostile["request"]).comments.count() == 2
