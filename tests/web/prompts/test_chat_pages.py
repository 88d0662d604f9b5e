"""A chat template's pages (issue 18): the version page shows its messages, model
configuration and response format; the diff page (and the API's diff) shows them message by
message and side by side, with the bump they need. Rows written straight into the mirror."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_ui.core.messages import messages_text
from tests.support.mirror_rows import signed_in, template, version
from tests.web.api.conftest import personal

pytestmark = pytest.mark.django_db

OLD = [
    {"role": "system", "content": "You write hooks for {audience}."},
    {"role": "user", "content": "A hook about {topic}."},
]
NEW = [
    {"role": "system", "content": "You write short hooks for {audience}."},
    {"role": "user", "content": "A hook about {topic}."},
    {"role": "assistant", "content": "Sure: {example}"},
]
FORMAT = {"type": "object", "properties": {"hook": {"type": "string"}}, "required": ["hook"]}
WIDER = {
    "type": "object",
    "properties": {"hook": {"type": "string"}, "hashtags": {"type": "array"}},
    "required": ["hook"],
}


@pytest.fixture
def chat(db):
    row = template("team/chat-hook")
    version(
        row,
        "1.0.0",
        messages_text(OLD),
        extra={"messages": OLD, "model_config": {"model": "gpt-4o", "temperature": 0.7}},
    )
    version(
        row,
        "2.0.0",
        messages_text(NEW),
        extra={
            "messages": NEW,
            "model_config": {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 120},
            "response_format": WIDER,
        },
    )
    version(row, "2.1.0", messages_text(NEW), extra={"messages": NEW, "response_format": FORMAT})
    return row


def test_the_version_page_shows_messages_configuration_and_response_format(chat, reader):
    page = signed_in(reader).get("/templates/team/chat-hook/-/versions/2.0.0")

    assert page.status_code == 200
    text = page.text
    assert '<h2 id="messages-heading">Messages</h2>' in text
    assert '<span class="role">assistant</span><pre class="text">Sure: {example}</pre>' in text
    assert "<dt><code>temperature</code></dt><dd><code>0.2</code></dd>" in text
    assert "<dt><code>max_tokens</code></dt><dd><code>120</code></dd>" in text
    assert '<h2 id="response-format-heading">Response format</h2>' in text
    assert "&quot;hashtags&quot;" in text
    assert "[assistant]" not in text  # the messages, not their flattened text


def test_the_diff_shows_each_message_and_the_configuration_side_by_side(chat, reader):
    page = signed_in(reader).get(
        "/templates/team/chat-hook/-/diff", {"from": "1.0.0", "to": "2.0.0"}
    )

    text = page.text
    assert page.status_code == 200
    assert "<strong>Message 1</strong>: system, changed" in text
    assert "<strong>Message 2</strong>: user, the same" in text
    assert "<strong>Message 3</strong>: assistant, added" in text
    assert (
        '<tr class="replace"><th scope="row"><code>temperature</code></th>'
        "<td><code>0.7</code></td><td><code>0.2</code></td><td>changed</td></tr>"
    ) in text
    assert (
        '<th scope="row"><code>model</code></th><td><code>&quot;gpt-4o&quot;</code></td>'
        '<td><code>&quot;gpt-4o&quot;</code></td><td><span class="muted">same</span></td>'
    ) in text
    assert "adds a response format" in text  # the bump's reasons
    assert "changes the model configuration (max_tokens 120 added, temperature 0.7" in text


def test_a_field_removed_from_the_response_format_needs_a_major_bump(chat, reader):
    page = signed_in(reader).get(
        "/templates/team/chat-hook/-/diff", {"from": "2.0.0", "to": "2.1.0"}
    )

    assert "removes field &#x27;hashtags&#x27; from the response format" in page.text
    assert "not bumped enough: 2.1.0 should be 3.0.0 or later" in page.text
    # The schema's lines diffed: the removed property's lines struck out.
    assert re.search(r"<del>- +&quot;hashtags&quot;: \{</del>", page.text), page.text[-3000:]


def test_the_api_diff_carries_the_same_comparison(chat, erin):
    body = (
        personal(erin, ["read"])
        .get("/templates/team/chat-hook/-/diff", {"from": "1.0.0", "to": "2.0.0"})
        .json()
    )

    assert [m["status"] for m in body["messages_diff"]] == ["changed", "same", "added"]
    assert {c["key"]: c["changed"] for c in body["model_config_diff"]} == {
        "max_tokens": True,
        "model": False,
        "temperature": True,
    }
    assert body["response_format_diff"]


def test_a_text_template_keeps_its_page_and_queries(reader):
    row = template("team/plain")
    version(row, "1.0.0", "Hi {who}")
    version(row, "1.1.0", "Hi {who}, from {place}")
    client = signed_in(reader)
    client.get("/templates/team/plain/-/diff", {"from": "1.0.0", "to": "1.1.0"})

    with CaptureQueriesContext(connection) as plain:
        page = client.get("/templates/team/plain/-/diff", {"from": "1.0.0", "to": "1.1.0"})

    assert "Messages</h2>" not in page.text and "Model configuration" not in page.text
    row = template("team/chat-two")
    version(row, "1.0.0", messages_text(OLD), extra={"messages": OLD})
    version(row, "2.0.0", messages_text(NEW), extra={"messages": NEW})
    client.get("/templates/team/chat-two/-/diff", {"from": "1.0.0", "to": "2.0.0"})
    with CaptureQueriesContext(connection) as chat:
        client.get("/templates/team/chat-two/-/diff", {"from": "1.0.0", "to": "2.0.0"})
    assert len(chat) == len(plain)
