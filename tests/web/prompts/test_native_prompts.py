"""Native prompts mirrored, adopted and governed, against a real MLflow (local SQLite store)."""

from __future__ import annotations

import uuid

import mlflow
import pytest
from django.core.management import call_command
from mlflow.tracking import MlflowClient

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import AuditEvent, NativeAliasRequest, NativePrompt
from registry_ui.web.prompts.mirror import sync_registry
from registry_ui.web.prompts.native import (
    AliasRequestError,
    approve_alias_request,
    file_alias_request,
    sync_native_prompts,
)

pytestmark = pytest.mark.django_db(transaction=True)
WEBHOOK_SECRET = "native-webhook-secret-for-tests"


@pytest.fixture
def webhook_secret(settings, in_process_tasks):
    settings.MLFLOW_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture
def prefix(sqlite_registry_uri):
    """Prompt names no other test uses (the registry outlives each test)."""
    return f"np-{uuid.uuid4().hex[:8]}-"


def register_three(name: str) -> None:
    mlflow.genai.register_prompt(name, "Hello {{ name }}, you are {{ age }}", commit_message="one")
    mlflow.genai.register_prompt(name, "Hello {{ name }}!", commit_message="two")
    mlflow.genai.register_prompt(
        name,
        [
            {"role": "system", "content": "Be {{ tone }}"},
            {"role": "user", "content": "Hi {{name}}"},
        ],
        commit_message="three",
        model_config={"model_name": "gpt-4o", "temperature": 0.1},
        response_format={"type": "object", "properties": {"reply": {"type": "string"}}},
    )
    mlflow.genai.set_prompt_alias(name, "production", 1)


def test_the_sync_mirrors_native_prompts_with_derived_versions(prefix):
    name = prefix + "greet"
    register_three(name)
    mlflow.genai.register_prompt(prefix + "jinja", "Hi{% if name %} {{ name }}{% endif %}")

    counts = sync_registry()

    assert counts["native_prompts"] >= 2
    row = NativePrompt.objects.get(name=name)
    assert row.aliases == {"production": "1"}
    assert not row.governed  # NATIVE_PROMPTS_GOVERNED defaults to none
    versions = list(row.versions.order_by("number"))
    assert [(v.number, v.semver, v.kind) for v in versions] == [
        (1, "1.0.0", "text"),
        (2, "2.0.0", "text"),  # removes {{ age }}
        (3, "2.1.0", "chat"),  # adds {{ tone }}, a model configuration, a response format
    ]
    assert versions[2].template[0] == {"role": "system", "content": "Be {{ tone }}"}
    assert versions[2].model_config == {"model_name": "gpt-4o", "temperature": 0.1}
    assert versions[1].commit_message == "two"
    assert NativePrompt.objects.get(name=prefix + "jinja").versions.get().kind == "text (Jinja2)"
    # A second sync finds nothing new.
    assert sync_native_prompts(name=name)["native_changes"] == 0


def test_import_prompts_adopts_once_and_a_second_run_changes_nothing(prefix, capsys):
    name = prefix + "greet"
    register_three(name)
    client = MlflowClient()

    call_command("import_prompts", prefix=prefix, dry_run=True)
    out = capsys.readouterr().out
    assert f"{name}: would tag MLflow version 2 as 2.0.0" in out
    assert f"{name}: would adopt, keeping production -> 1.0.0" in out
    assert "dry run: nothing was changed" in out
    assert not NativePrompt.objects.filter(name=name).exists()
    assert "registry_ui.semver" not in client.get_prompt_version(name, 2).tags

    call_command("import_prompts", prefix=prefix, actor="ops")
    row = NativePrompt.objects.get(name=name)
    assert row.governed and row.governed_aliases == {"production": "1"}
    assert client.get_prompt_version(name, 3).tags["registry_ui.semver"] == "2.1.0"
    adopted = AuditEvent.objects.get(object_id=name, action="native_prompt.adopted")
    assert (adopted.actor, adopted.source) == ("ops", "command")
    assert adopted.after["versions"] == {"1": "1.0.0", "2": "2.0.0", "3": "2.1.0"}
    events = AuditEvent.objects.count()
    capsys.readouterr()

    call_command("import_prompts", prefix=prefix)
    assert "nothing to do" in capsys.readouterr().out
    assert AuditEvent.objects.count() == events

    # Changed in MLflow between runs: brought up to date, and only that.
    mlflow.genai.register_prompt(name, "Hello {{ name }}!!", commit_message="four")
    call_command("import_prompts", prefix=prefix)
    out = capsys.readouterr().out
    # 3.0.0: drops {{ tone }} and the response format
    assert f"{name}: did tag MLflow version 4 as 3.0.0" in out
    assert row.versions.count() == 4
    assert AuditEvent.objects.filter(object_id=name, action="native_prompt.updated").count() == 1


def test_a_governed_alias_moves_only_after_two_approvals(prefix, rita, bob, carol):
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix)

    request = file_alias_request(rita, prompt=name, version="2.1.0", alias="production")
    with pytest.raises(AliasRequestError, match="four eyes"):
        approve_alias_request(rita, request.pk)
    approve_alias_request(bob, request.pk)
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 1
    approve_alias_request(carol, request.pk)

    request.refresh_from_db()
    assert request.state == "done", request.result
    loaded = mlflow.genai.load_prompt(f"prompts:/{name}@production")
    assert loaded.version == 3
    assert PromptModel.load_from_registry(name).mlflow_version == "3"
    assert NativePrompt.objects.get(name=name).governed_aliases == {"production": "3"}
    actions = list(
        AuditEvent.objects.filter(object_id=name).order_by("seq").values_list("action", flat=True)
    )
    assert actions[-4:] == [
        "native_alias.requested",
        "native_alias.approved",
        "native_alias.approved",
        "native_alias.moved",
    ]
    assert sync_native_prompts(name=name)["native_outside_moves"] == 0


def test_a_request_is_refused_for_an_ungoverned_alias_or_prompt(prefix, alice):
    name = prefix + "greet"
    register_three(name)
    sync_native_prompts(name=name)
    with pytest.raises(AliasRequestError, match="is not governed"):
        file_alias_request(alice, prompt=name, version="2", alias="production")
    call_command("import_prompts", prefix=prefix)
    with pytest.raises(AliasRequestError, match="'canary' is not a governed alias"):
        file_alias_request(alice, prompt=name, version="2", alias="canary")


def test_a_bump_too_small_is_refused_unless_overridden_with_a_reason(prefix, alice):
    name = prefix + "greet"
    mlflow.genai.register_prompt(name, "Hello {{ name }}")
    mlflow.genai.register_prompt(name, "Hello {{ name }} from {{ city }}")
    mlflow.genai.set_prompt_alias(name, "production", 1)
    # Someone tagged version 2 as a patch, though it adds a variable.
    mlflow.genai.set_prompt_version_tag(name, 2, "registry_ui.semver", "1.0.1")
    sync_native_prompts(name=name)
    row = NativePrompt.objects.get(name=name)
    row.governed, row.governed_aliases = True, {"production": "1"}
    row.save()
    assert row.versions.get(number=2).semver == "1.0.1"
    with pytest.raises(AliasRequestError, match=r"1\.0\.1 is a patch bump from 1\.0\.0 but adds"):
        file_alias_request(alice, prompt=name, version="2", alias="production")
    request = file_alias_request(
        alice, prompt=name, version="2", alias="production", bump_override="callers pass city"
    )
    assert request.bump_override == "callers pass city"


def test_an_alias_moved_outside_is_flagged_audited_and_moved_back_if_asked(prefix, settings):
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix)

    mlflow.genai.set_prompt_alias(name, "production", 2)  # outside registry_ui
    assert sync_native_prompts(name=name)["native_outside_moves"] == 1
    row = NativePrompt.objects.get(name=name)
    assert row.outside_alias_change == (
        "production is on version 2 in MLflow, registry_ui accepted version 1"
    )
    event = AuditEvent.objects.get(object_id=name, action="native_prompt.alias_moved_outside")
    assert (event.before, event.after, event.source) == (
        {"production": "1"},
        {"production": "2"},
        "external",
    )
    assert sync_native_prompts(name=name)["native_outside_moves"] == 0  # flagged once

    settings.NATIVE_REVERT_OUTSIDE_MOVES = True
    mlflow.genai.set_prompt_alias(name, "production", 3)
    assert sync_native_prompts(name=name)["native_outside_moves"] == 1
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 1
    assert NativePrompt.objects.get(name=name).outside_alias_change == ""
    assert AuditEvent.objects.filter(object_id=name, action="native_prompt.alias_restored").exists()
    get_registry().invalidate(name)


def test_the_pages_list_and_show_a_native_prompt_with_messages_and_a_preview(prefix, client, alice):
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix)
    client.force_login(alice)

    listing = client.get("/native-prompts/").content.decode()
    assert f'href="/native-prompts/{name}"' in listing
    assert "native</span>" in listing
    found = client.get("/native-prompts/", {"q": prefix}).content.decode()
    assert f'href="/native-prompts/{name}"' in found and "whose name contains" in found
    none = client.get("/native-prompts/", {"q": "no-such-prompt"}).content.decode()
    assert "No native prompt&#x27;s name contains" in none or "No native prompt's name" in none
    # Beside the templates, marked native, with their newest version.
    beside = client.get("/", {"q": prefix}).content.decode()
    assert f'href="/native-prompts/{name}"' in beside and "native</span>" in beside
    assert "2.1.0, 3 versions, governed" in beside
    assert "native-matches" not in client.get("/", {"q": prefix, "stage": "production"}).text

    page = client.get(f"/native-prompts/{name}").content.decode()
    assert "MLflow version 3, chat" in page
    assert '<span class="role">system</span><pre class="text">Be {{ tone }}</pre>' in page
    assert "&quot;temperature&quot;: 0.1" in page
    assert "Changes from 2.0.0" in page
    # What changed, with the bump each change needs, and the variables side by side.
    assert '<span class="bump major">major</span> removes variable &#x27;age&#x27;' in page
    assert '<span class="bump minor">minor</span> adds variable &#x27;tone&#x27;' in page
    assert "added <ins>tone</ins>" in page and "removed <del>age</del>" in page
    assert "<h4>Response format</h4>" in page
    assert "<ins>+     &quot;reply&quot;: {</ins>" in page

    preview = client.get(
        f"/native-prompts/{name}", {"version": "1", "v_name": "Ann", "v_age": "3"}
    ).content.decode()
    assert '<pre class="template text">Hello Ann, you are 3</pre>' in preview
    assert client.get("/native-prompts/nope").status_code == 404


def test_an_outside_alias_move_is_flagged_through_the_webhook(
    webhook_server, live_server, webhook_secret
):
    import time

    from tests.support.workers import wait_for

    # First: MLflow caches each event's webhooks (MLFLOW_WEBHOOK_CACHE_TTL), so a webhook
    # created after an alias event of the same kind is not seen until that cache expires.
    MlflowClient().create_webhook(
        name="registry-ui-prompts",
        url=f"{live_server.url}/webhooks/mlflow",
        events=["prompt_alias.created", "prompt_version.created"],
        secret=WEBHOOK_SECRET,
    )
    name = f"np-{uuid.uuid4().hex[:8]}-hook"
    mlflow.genai.register_prompt(name, "Hi {{ who }}")
    mlflow.genai.register_prompt(name, "Hello {{ who }}")
    wait_for(
        lambda: NativePrompt.objects.filter(name=name, versions__number=2).exists(),
        timeout=30,
        message="the prompt webhook to mirror the new versions",
    )
    call_command("import_prompts", prefix=name)
    started = time.monotonic()

    mlflow.genai.set_prompt_alias(name, "production", 2)  # outside registry_ui

    wait_for(
        lambda: NativePrompt.objects.get(name=name).outside_alias_change != "",
        timeout=30,
        message="the prompt webhook to flag the alias move",
    )
    print(f"outside alias move flagged through the webhook in {time.monotonic() - started:.2f} s")
    event = AuditEvent.objects.get(object_id=name, action="native_prompt.alias_moved_outside")
    assert (event.before, event.after) == ({"production": None}, {"production": "2"})


def test_over_http_prompts_are_mirrored_by_the_webhook_listed_diffed_previewed_and_tested(
    webhook_server, live_server, webhook_secret, alice
):
    """The runtime path: MLflow's own API against a real `mlflow server`, its webhook to the
    dashboard, the pages read from what the webhook mirrored."""
    import json

    from tests.support.mirror_rows import signed_in
    from tests.support.workers import wait_for

    MlflowClient().create_webhook(
        name="registry-ui-prompts-pages",
        url=f"{live_server.url}/webhooks/mlflow",
        events=["prompt_version.created"],
        secret=WEBHOOK_SECRET,
    )
    name = f"np-{uuid.uuid4().hex[:8]}-http"
    cases = [{"name": "greets", "values": {"who": "Ada", "tone": "warm"}, "contains": "Ada"}]
    mlflow.genai.register_prompt(
        name, "Hi {{ who }}", tags={"registry_ui.test_cases": json.dumps(cases)}
    )
    mlflow.genai.register_prompt(
        name,
        [
            {"role": "system", "content": "Be {{ tone }}"},
            {"role": "user", "content": "Hello {{ who }}"},
        ],
        model_config={"model_name": "gpt-4o-mini", "temperature": 0.3},
        tags={"registry_ui.test_cases": json.dumps(cases)},
    )
    wait_for(
        lambda: NativePrompt.objects.filter(name=name, versions__number=2).exists(),
        timeout=30,
        message="the prompt webhook to mirror both versions",
    )
    client = signed_in(alice)

    listing = client.get("/native-prompts/", {"q": name}).text
    page = client.get(f"/native-prompts/{name}").text
    preview = client.get(
        f"/native-prompts/{name}", {"version": "2", "v_who": "Al", "v_tone": "brief"}
    ).text

    assert f'href="/native-prompts/{name}"' in listing
    assert "MLflow version 2, chat" in page and "Changes from 1.0.0" in page
    assert "adds variable &#x27;tone&#x27;" in page and "gpt-4o-mini" in page
    assert "Test cases of 1.1.0" in page and "The test case passes" in page
    assert "Be warm\n\n[user]\nHello Ada" in page  # the case rendered, MLflow's way
    assert "Be brief" in preview and "Hello Al" in preview


def test_the_dashboard_files_and_approves_and_the_worker_moves_the_alias(
    prefix, client, alice, bob, carol, in_process_tasks
):
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix)
    client.force_login(alice)
    response = client.post(
        f"/native-prompts/{name}/requests", {"version": "2", "alias": "production", "reason": "go"}
    )
    assert response.status_code == 303
    refused = client.post(
        f"/native-prompts/{name}/requests", {"version": "9", "alias": "production"}
    )
    assert refused.status_code == 400
    assert "has no version 9" in refused.content.decode()
    request = NativeAliasRequest.objects.get(prompt__name=name)
    for reviewer in (bob, carol):
        client.force_login(reviewer)
        page = client.get(f"/native-prompts/{name}").content.decode()
        assert f'action="/native-alias-requests/{request.pk}/approve"' in page
        assert client.post(f"/native-alias-requests/{request.pk}/approve").status_code == 303
    request.refresh_from_db()
    assert (request.state, request.approvals) == ("done", ["bob", "carol"])
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 2


def test_with_native_publish_the_sync_publishes_staged_versions_and_keeps_aliases(
    prefix, settings, unique_name
):
    settings.NATIVE_PUBLISH = "all"
    name, spec = unique_name(), unique_name()
    v1 = PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": "a"}).register()
    v2 = PromptModel(name, "Hello {who}", "1.0.1", metadata={"author": "a"}).register()
    v1.promote_to_staging()
    v1.promote_to_production()
    priced = PromptModel(spec, "Costs {price:.2f}", "1.0.0", metadata={"author": "a"}).register()
    priced.promote_to_staging()

    counts = sync_registry()
    assert counts["native_published"] >= 1 and counts["native_unpublishable"] >= 1
    target = name.replace("/", ".") + "._prompt"
    assert mlflow.genai.load_prompt(f"prompts:/{target}@production").format(who="Al") == "Hi Al"
    assert sync_registry()["native_published"] == 0  # in step: nothing written

    v2.promote_to_staging()
    sync_registry()
    assert mlflow.genai.load_prompt(f"prompts:/{target}@staging").format(who="Al") == "Hello Al"
    assert mlflow.genai.load_prompt(f"prompts:/{target}@production").format(who="Al") == "Hi Al"
    assert (
        mlflow.genai.load_prompt(f"prompts:/{spec.replace('/', '.')}._prompt/1", allow_missing=True)
        is None
    )


def test_the_native_sync_costs_two_mlflow_calls_whatever_the_number_of_prompts(prefix):
    gateway = get_registry().gateway
    costs = []
    for batch in range(2):
        for index in range(3 * (batch + 1)):
            mlflow.genai.register_prompt(f"{prefix}{batch}-{index}", "Hi {{ who }}")
            mlflow.genai.register_prompt(f"{prefix}{batch}-{index}", "Hello {{ who }}")
        before = gateway.calls
        counts = sync_native_prompts(gateway)
        costs.append(gateway.calls - before)
        assert counts["native_prompts"] >= 3 * (batch + 1)
    assert costs == [2, 2]


def test_the_audit_log_lists_the_adoption(prefix, client, root):
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix, actor="ops")
    client.force_login(root)
    page = client.get("/audit/", {"action": "native_prompt."})
    assert page.status_code == 200
    assert "native_prompt.adopted" in page.content.decode()
    assert name in page.content.decode()


def test_the_prompt_page_shows_its_lineage_newest_first(prefix, reader):
    from tests.support.mirror_rows import signed_in

    name = prefix + "storied"
    mlflow.genai.register_prompt(name, "Hi {{ who }}")
    sync_registry()
    mlflow.genai.register_prompt(name, "Hello {{ who }}")
    sync_registry()

    page = signed_in(reader).get(f"/native-prompts/{name}").text

    assert '<h2 id="native-lineage-h">Lineage</h2>' in page
    entries = page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    assert entries.count("<li>") == 1  # the first sync saw a new prompt, not an update
    assert "new versions seen in MLflow, by mlflow" in entries
    assert "(versions: 1.0.1 (MLflow 2))" in entries  # the same variable: a patch


def test_reviewers_find_native_alias_moves_on_the_requests_page(prefix, client, rita, bob, carol):
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix)
    request = file_alias_request(
        rita, prompt=name, version="2.1.0", alias="production", reason="Shorter greeting"
    )

    def shown(user, tab: str) -> str:
        client.force_login(user)
        return client.get("/requests/", {"tab": tab}).content.decode()

    waiting = shown(bob, "waiting")
    assert "Native prompts: alias moves" in waiting
    assert f"/native-prompts/{name}#requests-h" in waiting
    assert "production to 2.1.0 (MLflow version 3)" in waiting and "0 of 2" in waiting
    assert "Shorter greeting" in waiting and "rita" in waiting
    assert name not in shown(rita, "waiting")  # the requester never approves her own
    assert name in shown(rita, "mine") and name in shown(rita, "open")

    assert "1 waiting for you" in waiting  # the header's count includes the move
    approve_alias_request(bob, request.pk)  # one of two: still open, not bob's to approve
    assert name not in shown(bob, "waiting")
    assert "waiting for you" not in shown(bob, "open")
    assert "1 of 2" in shown(carol, "waiting")
    approve_alias_request(carol, request.pk)
    assert name not in shown(carol, "waiting") and name not in shown(carol, "open")
    assert "Done" in shown(carol, "all")


@pytest.mark.usefixtures("in_process_tasks")
def test_native_alias_requests_email_the_reviewers_then_the_requester(
    prefix, settings, mailoutbox, rita, bob, carol, alice
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://registry.example.com"
    name = prefix + "greet"
    register_three(name)
    call_command("import_prompts", prefix=prefix)

    request = file_alias_request(
        rita, prompt=name, version="2.1.0", alias="production", reason="Shorter greeting"
    )
    # Filed: every reviewer who may approve it, never the requester (rita also reviews).
    assert sorted(m.to[0] for m in mailoutbox) == ["bob@example.com", "carol@example.com"]
    first = mailoutbox[0]
    assert first.subject == (
        f"[registry_ui] Review needed: native prompt {name}: production to 2.1.0"
    )
    assert "rita asks to move production" in first.body and "Shorter greeting" in first.body
    assert f"https://registry.example.com/native-prompts/{name}#requests-h" in first.body

    mailoutbox.clear()
    approve_alias_request(bob, request.pk)  # one of two: only carol can still act
    assert [m.to for m in mailoutbox] == [["carol@example.com"]]
    assert "Approvals so far: bob" in mailoutbox[0].body

    mailoutbox.clear()
    approve_alias_request(carol, request.pk)  # enough: the alias moves, rita is told
    request.refresh_from_db()
    assert request.state == "done", request.result
    assert [m.to for m in mailoutbox] == [["rita@example.com"]]
    assert mailoutbox[0].subject.endswith(": done") and "was carried out" in mailoutbox[0].body


def test_a_lineage_detail_reads_without_doubled_punctuation():
    from registry_ui.web.prompts.native_views import _detail

    detail = _detail({"reason": "Ready for staging.", "semver": "1.1.0", "empty": ""})
    assert detail == "reason: Ready for staging; semver: 1.1.0"
