"""The native prompt pages in Chromium, on a desktop and a 390 px phone."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import mlflow
import pytest
from django.core.management import call_command
from django.utils import timezone

from registry_ui.web.experiments import definitions
from registry_ui.web.experiments.definitions import VariantLine
from tests.browser.test_journey import make_user, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri"),
]


CASES = [
    {
        "name": "names the company",
        "values": {"company": "Acme", "question": "Where is my order?"},
        "messages": [{"role": "system", "contains": "Acme"}],
        "sample_output": '{"answer": "On its way."}',
    },
    {
        "name": "stays short",
        "values": {"company": "Acme", "question": "Where is my order?"},
        "max_length": 40,
    },
]


@pytest.mark.parametrize("width", [1280, 390])
def test_the_native_prompt_page_reads_at_each_width(new_page, screenshot, width):
    prefix = f"np-{uuid.uuid4().hex[:6]}-"
    name = prefix + "support-reply"
    mlflow.genai.register_prompt(name, "Answer {{ question }} kindly.", commit_message="first")
    mlflow.genai.register_prompt(
        name,
        [
            {"role": "system", "content": "You answer for {{ company }}, briefly and kindly."},
            {"role": "user", "content": "{{ question }}"},
        ],
        commit_message="as a chat, with a model",
        model_config={"model_name": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 300},
        response_format={"type": "object", "properties": {"answer": {"type": "string"}}},
        tags={"registry_ui.test_cases": json.dumps(CASES)},
    )
    mlflow.genai.set_prompt_alias(name, "production", 1)
    call_command("import_prompts", prefix=prefix)
    definitions.create_experiment(
        actor="dave",
        template_name=name,
        key=f"{prefix}chat",
        title="Chat against plain text",
        variants=[VariantLine("control", "1.0.0", 50), VariantLine("treatment", "1.1.0", 50)],
        metric="resolved",
        kind="rate",
        min_samples=100,
        start_at=timezone.now(),
        stop_at=timezone.now() + timedelta(days=14),
    )
    make_user("nina", "authors")

    page, problems = sign_in(new_page, "nina")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/native-prompts/")
    assert page.get_by_role("link", name=name).is_visible()
    screenshot(page, f"native-list-{width}")
    page.goto(f"/?q={prefix}")
    assert page.get_by_role(
        "heading", name="Native prompts whose name contains", exact=False
    ).is_visible()
    assert page.get_by_role("link", name=name).is_visible()
    screenshot(page, f"templates-with-native-{width}")
    page.goto(
        f"/native-prompts/{name}?version=2&v_company=Acme&v_question=Where%20is%20my%20order%3F"
    )
    assert page.locator("ol.messages").first.is_visible()
    page.get_by_text("Changes from 1.0.0").click()
    assert page.get_by_role("heading", name="Test cases of 1.1.0").is_visible()
    page.get_by_role("button", name="Run the test cases again").click()
    page.wait_for_url("**#checks-h")
    assert page.get_by_text("run on demand by nina").is_visible()
    assert page.get_by_role("link", name="Chat against plain text").is_visible()
    screenshot(page, f"native-prompt-{width}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        print(
            page.evaluate("""[...document.querySelectorAll('body *')].filter(e =>
            e.getBoundingClientRect().right > window.innerWidth).slice(0, 8).map(e =>
            e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        )
    assert overflow <= 0
    assert problems == []
