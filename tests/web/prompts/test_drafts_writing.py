"""Writing a template or a version: a new template from the list or a folder, the metadata
as fields (JSON only as the advanced view), the suggested version as a one-click offer,
filing turned off while the check finds problems, and the page after filing."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from registry_ui.web.models import Batch
from tests.support.mirror_rows import HTMX, METADATA, member, signed_in, template, version

# The design note's four keys are required, as where nothing is set (the tests' default is
# none).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_metadata_policy")]


def fields(name="t/new", number="1.0.0", text="Hello {name}", **extra) -> dict:
    """A draft as the page posts it: the metadata as fields."""
    return {
        "name": name,
        "version": number,
        "template": text,
        "metadata_fields": "1",
        "meta:author": "writer",
        "meta:purpose": "greets people",
        "meta:tested_on": "threads, linkedin",
        "meta:performance_metrics:name": ["engagement_rate", ""],
        "meta:performance_metrics:value": ["0.05", ""],
        "extra_key": ["engagement_target", "tags", ""],
        "extra_value": ["0.06", '["social"]', ""],
        **extra,
    }


def test_it_offers_a_new_template_on_the_list_and_in_a_folder(alice):
    client = signed_in(alice)

    everything = client.get("/")
    folder = client.get("/?folder=persona/entrepreneur")
    page = client.get("/versions/new?folder=persona/entrepreneur")

    assert '<a class="button" href="/versions/new">New template</a>' in everything.text
    assert 'href="/versions/new?folder=persona/entrepreneur">New template in' in folder.text
    assert "<h1>New template</h1>" in page.text
    assert 'name="name" value="persona/entrepreneur/"' in page.text
    assert 'id="meta-author" name="meta:author" value="alice"' in page.text


def test_the_heading_says_version_for_a_template_that_exists(alice):
    version(template("t/known"), "1.2.0", "Hi {who}", metadata=METADATA)

    page = signed_in(alice).get("/versions/new?template=t/known")

    assert "<h1>New version of" in page.text
    assert 'name="version" value="1.2.1"' in page.text
    # The latest version's metadata, shown as fields (metrics as rows) and as JSON.
    assert 'id="meta-purpose" name="meta:purpose" value="greets people"' in page.text
    assert 'name="meta:performance_metrics:name" value="engagement_rate"' in page.text
    assert "&quot;engagement_rate&quot;: 0.05" in page.text
    assert 'name="metadata_as_json" value="1" id="metadata-as-json">' in page.text  # not ticked


def test_the_fields_make_the_metadata_and_the_json_view_follows(alice):
    check = signed_in(alice).post("/versions/validate", fields(), headers=HTMX)

    assert "No problems found" in check.text
    # The JSON view is swapped out of band with what the fields say.
    textarea = check.text.split('id="version-metadata"')[1]
    json_view = textarea.split(">", 1)[1].split("</textarea>")[0]
    assert json.loads(json_view.replace("&quot;", '"')) == {
        "author": "writer",
        "purpose": "greets people",
        "tested_on": ["threads", "linkedin"],
        "performance_metrics": {"engagement_rate": 0.05},
        "engagement_target": 0.06,
        "tags": ["social"],
    }


def test_a_field_problem_is_said_about_the_field(alice):
    draft = fields(**{"meta:purpose": "", "meta:performance_metrics:value": ["lots", ""]})

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert "Purpose is required: What the template does" in check.text
    assert "Expected metrics, row 1 (engagement_rate): &#x27;lots&#x27; is not a number" in (
        check.text
    )
    assert "{engagement_rate: 0.06}" not in check.text  # no hint written for another format
    assert "2 problems" in check.text


def test_the_json_view_wins_when_its_box_is_ticked(alice):
    draft = fields(metadata_as_json="1", metadata=json.dumps({**METADATA, "purpose": "json"}))

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert "No problems found" in check.text
    # The fields are swapped out of band with what the JSON says, and turned off.
    assert 'id="meta-purpose" name="meta:purpose" value="json"' in check.text
    assert '<fieldset id="metadata-fields" class="metadata-fields" disabled' in check.text


def test_the_suggested_version_is_offered_with_one_click(alice):
    version(template("t/next"), "1.2.0", "Hi {who}", metadata=METADATA)
    client = signed_in(alice)

    after_a_variable = client.post(
        "/versions/validate", fields("t/next", "1.2.1", "Hi {who} from {city}"), headers=HTMX
    )
    taken = client.post(
        "/versions/validate", fields("t/next", "1.3.0", "Hi {who} from {city}"), headers=HTMX
    )

    assert 'data-suggested="1.3.0"' in after_a_variable.text
    assert 'name="version" value="1.3.0" class="secondary take-suggestion">Use 1.3.0' in (
        after_a_variable.text
    )
    assert "take-suggestion" not in taken.text  # the version is the suggested one already
    assert "No problems found" in taken.text


def test_filing_is_turned_off_while_the_check_finds_problems(alice):
    client = signed_in(alice)

    broken = client.post("/versions/validate", fields(text="Hello {name"), headers=HTMX)
    fixed = client.post("/versions/validate", fields(), headers=HTMX)

    assert '<button type="submit" id="file-version" disabled' in broken.text
    assert 'hx-swap-oob="true">File this template</button>' in broken.text
    assert 'data-line="1" data-column="7"' in broken.text  # for the editor's marks
    assert '<button type="submit" id="file-version" hx-swap-oob="true">' in fixed.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks")
def test_after_filing_the_page_links_to_the_version_and_to_staging(unique_name):
    alice = member("alice", "authors")
    name = unique_name("written")
    client = signed_in(alice)

    with transaction.atomic():  # as a request would be: the batch is sent after commit
        # The metadata author names an author's account (issue 16, finding 8).
        filed = client.post(
            "/versions/new", fields(name, "1.0.0", "Hello {name}", **{"meta:author": "alice"})
        )
    batch = Batch.objects.get()
    page = client.get(filed["Location"])

    assert filed["Location"] == f"/versions/filed/{batch.pk}"
    assert "✓ " + f"{name} 1.0.0 is registered, in dev." in page.text
    assert f'href="/templates/{name}/-/versions/1.0.0">Open 1.0.0</a>' in page.text
    assert f"?template={name}&amp;version=1.0.0&amp;target=staging" in page.text
    assert "hx-trigger" not in page.text  # finished: no more polling


def test_the_page_after_filing_follows_a_running_batch(alice):
    from registry_ui.web.models import Operation

    batch = Batch.objects.create(actor="alice", total=1)
    Operation.objects.create(
        batch=batch, position=1, kind="register", template_name="t/x", version="1.0.0"
    )

    page = signed_in(alice).get(f"/versions/filed/{batch.pk}")

    assert "Registering in MLflow" in page.text
    assert f'hx-get="/versions/filed/{batch.pk}" hx-trigger="every 1s"' in page.text


def test_a_problem_in_the_json_view_gives_a_json_example(alice):
    metadata = {**METADATA, "performance_metrics": "high"}
    del metadata["purpose"]
    draft = fields(metadata_as_json="1", metadata=json.dumps(metadata))

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert (
        "metadata.purpose is missing: it must be text, e.g. &quot;purpose&quot;: &quot;Opening"
        in check.text
    )
    assert (
        "metadata.performance_metrics must be a mapping of metric names to numbers, e.g. "
        "&quot;performance_metrics&quot;: {&quot;engagement_rate&quot;: 0.06}; found"
    ) in check.text
    assert "{engagement_rate: 0.06}" not in check.text  # YAML, not what is typed here


def test_test_cases_are_written_in_a_small_form(alice):
    case = {
        "case:name": ["fits a post", ""],
        "case:values": ["who = Ann\ncount = 3", ""],
        "case:contains": ["Ann\n3", ""],
        "case:max_length": ["500", ""],
        "case:no_leftover_braces": ["true", ""],
    }
    draft = fields(text="Hello {who}, {count} new", case_fields="1", **case)

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert "No problems found" in check.text
    textarea = check.text.split('id="version-metadata"')[1]
    json_view = json.loads(textarea.split(">", 1)[1].split("</textarea>")[0].replace("&quot;", '"'))
    assert json_view["test_cases"] == [
        {
            "name": "fits a post",
            "values": {"who": "Ann", "count": 3},
            "contains": ["Ann", "3"],
            "max_length": 500,
            "no_leftover_braces": True,
        }
    ]


def test_a_case_the_form_cannot_show_stays_json(alice):
    cases = [{"name": "r", "values": {"who": "A"}, "contains": [{"regex": "A$"}]}]
    version(template("t/cases"), "1.0.0", "Hi {who}", metadata={**METADATA, "test_cases": cases})

    page = signed_in(alice).get("/versions/new?template=t/cases")

    assert 'id="meta-cases"' not in page.text
    assert 'name="extra_key" value="test_cases"' in page.text


def test_a_case_s_bad_line_is_said_about_the_case(alice):
    draft = fields(
        case_fields="1",
        **{
            "case:name": ["greets"],
            "case:values": ["who Ann"],
            "case:contains": [""],
            "case:max_length": ["lots"],
            "case:no_leftover_braces": [""],
        },
    )

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert "Test case 1 (greets), values: write one &#x27;variable = value&#x27; a line" in (
        check.text
    )
    assert "Test case 1 (greets): the maximum length &#x27;lots&#x27; is not a whole number" in (
        check.text
    )


def test_the_page_after_filing_is_only_for_a_registration(alice):
    from registry_ui.web.models import Operation

    batch = Batch.objects.create(actor="bob", total=1)
    Operation.objects.create(
        batch=batch,
        position=1,
        kind="transition",
        template_name="t/x",
        version="1.0.0",
        target_stage="staging",
    )

    assert signed_in(alice).get(f"/versions/filed/{batch.pk}").status_code == 404


CHAT = [
    {"role": "system", "content": "You write hooks for {audience}."},
    {"role": "user", "content": "A hook about {topic}."},
]


def test_a_chat_template_stays_one_in_the_editor_and_is_filed_with_its_configuration(
    unique_name, sqlite_registry_uri, in_process_tasks, django_capture_on_commit_callbacks
):
    """The editor starts from the latest chat version's messages, model configuration and
    response format (not its flattened text), suggests the bump they need, and files them."""
    from registry_ui.prompt_model import PromptModel
    from registry_ui.web.models import TemplateVersion
    from tests.web.reviews.test_approvals import sync

    alice = member("alice", "authors")
    name = unique_name("chat-editor")
    PromptModel(
        name, CHAT, "1.0.0", metadata=METADATA, model_config={"temperature": 0.7}
    ).register()
    sync(name)
    client = signed_in(alice)

    page = client.get(f"/versions/new?template={name}")
    chat = json.loads(page.context["form"].draft["chat"])
    assert chat == {"messages": CHAT, "model_config": {"temperature": 0.7}}
    assert 'name="template" rows="10" class="code" spellcheck="false" readonly' in page.text
    chat["model_config"]["temperature"] = 0.2
    chat["response_format"] = {"type": "object", "properties": {"hook": {"type": "string"}}}
    draft = {
        "name": name,
        "version": "1.0.1",
        "template": "ignored for a chat template",
        "metadata": json.dumps({**METADATA, "author": "alice"}),
        "chat": json.dumps(chat),
    }
    checked = client.post("/versions/validate", draft)
    assert checked.context["form"].suggested_version == "1.1.0"  # a response format added
    assert "adds a response format" in checked.text

    with django_capture_on_commit_callbacks(execute=True):  # the batch goes to the workers
        filed = client.post("/versions/new", {**draft, "version": "1.1.0"})
    assert filed.status_code in (302, 303), filed.content[:600]

    row = TemplateVersion.objects.get(template__name=name, version="1.1.0")
    assert row.extra["messages"] == CHAT
    assert row.extra["model_config"] == {"temperature": 0.2}
    assert row.extra["response_format"] == chat["response_format"]
    served = PromptModel.load_from_registry(name, version="1.1.0")
    assert served.messages == CHAT and served.model_config == {"temperature": 0.2}


def test_bad_chat_json_is_refused_saying_where(alice):
    version(template("t/chatty"), "1.0.0", "Hi {who}", metadata=METADATA)
    client = signed_in(alice)
    base = {"name": "t/chatty", "version": "1.1.0", "template": "Hi {who}"}
    base["metadata"] = json.dumps(METADATA)

    not_json = client.post("/versions/validate", {**base, "chat": "{messages: 1"})
    unknown = client.post("/versions/validate", {**base, "chat": '{"model": "x"}'})
    bad_message = client.post(
        "/versions/validate",
        {**base, "chat": json.dumps({"messages": [{"role": "user", "content": "Hi {who"}]})},
    )

    assert "1:2: not JSON" in not_json.context["form"].errors["chat"][0]
    assert "unknown keys model" in unknown.context["form"].errors["chat"][0]
    said = " ".join(bad_message.context["form"].errors["chat"])
    assert "message 1" in said.lower() or "message:1" in said, said
