"""Browser tests: Playwright drives the OS's Chromium against Django's live server.

Chromium comes from the OS packages (`apt-get install chromium`; .ci/run installs it), not
from Playwright's download. Without it these tests skip and say why, except in CI
(CI=true), where a missing browser fails the run instead of hiding the tests.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.web.conftest import in_process_tasks, start_worker, worker_queue  # noqa: F401

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"  # git-ignored


def _chromium() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or None


@pytest.fixture(scope="session")
def chromium_path():
    path = _chromium()
    if path is None or not Path(path).exists():
        message = "Chromium is not installed: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Per module: Playwright's event loop must be gone before other tests use the ORM."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while the browser lives; the
    # ORM calls the tests make between browser steps (and the database flush after each
    # test) are still plain synchronous calls, so Django's guard is relaxed for this
    # module only, and restored before any other test or subprocess runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch(sync_playwright, chromium_path)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch(sync_playwright, chromium_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """A fresh browser context (own cookies) per call; all closed after the test."""
    contexts = []

    def make():
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# axe-core, vendored from the npm registry (tests/browser/vendor/, MPL-2.0): the page's own
# Content-Security-Policy does not apply to Playwright's evaluate, so nothing is relaxed.
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_violations(page) -> list[str]:
    """Every axe-core violation on the page, one line each: rule, impact, first targets."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}})"
        ".then(r => r.violations.map(v => [v.id, v.impact, v.help,"
        " v.nodes.slice(0, 3).map(n => n.target.join(' '))]))",
        AXE_RULES,
    )
    return [
        f"{rule} ({impact}): {text} at {', '.join(targets)}"
        for rule, impact, text, targets in found
    ]


def sideways_scroll(page) -> str:
    """Empty when the page fits its width; else how far it runs over and the widest parts."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth <= width) return "";
          const over = [...document.querySelectorAll("body *")]
            .filter(e => e.getBoundingClientRect().right > width + 1)
            .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
          return `${document.documentElement.scrollWidth} px wide in ${width} px: ${over}`;
        }"""
    )
