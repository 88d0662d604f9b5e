from __future__ import annotations

import pytest
from django.core.management import call_command
from mlflow.tracking import MlflowClient

from registry_ui.prompt_model import PromptModel
from registry_ui.web.models import AuditEvent, Template, TemplateVersion

pytestmark = pytest.mark.django_db


def test_it_mirrors_versions_made_outside_and_audits_them_as_external(
    sqlite_registry_uri, unique_name, capsys
):
    name = unique_name()
    PromptModel(name, "Hi {who}", "1.0.0").register()

    call_command("sync_registry")

    assert "synced" in capsys.readouterr().out
    row = TemplateVersion.objects.get(template__name=name)
    assert (row.version, row.stage, row.text) == ("1.0.0", "dev", "Hi {who}")
    event = AuditEvent.objects.get(object_id=f"{name}@1.0.0")
    assert (event.action, event.source) == ("version.registered", "external")


def test_a_production_change_made_directly_in_mlflow_is_flagged_for_reviewers(
    sqlite_registry_uri, unique_name
):
    name = unique_name()
    v1, v2 = PromptModel.register_many(
        [PromptModel(name, "Hi {who}", "1.0.0"), PromptModel(name, "Hey {who}", "1.0.1")]
    )
    v1.promote_to_staging()
    v1.promote_to_production()
    call_command("sync_registry")
    assert not Template.objects.get(name=name).external_production_change

    client = MlflowClient(tracking_uri=sqlite_registry_uri, registry_uri=sqlite_registry_uri)
    client.set_registered_model_alias(name.replace("/", "."), "production", v2.mlflow_version)
    call_command("sync_registry")

    assert Template.objects.get(name=name).external_production_change
    stages = dict(
        TemplateVersion.objects.filter(template__name=name).values_list("version", "stage")
    )
    assert stages == {"1.0.0": "archived", "1.0.1": "production"}
    moved = AuditEvent.objects.get(object_id=f"{name}@1.0.1", action="version.stage_changed")
    assert (moved.before, moved.after, moved.source) == (
        {"stage": "dev"},
        {"stage": "production"},
        "external",
    )


def test_a_second_sync_with_nothing_changed_records_nothing(sqlite_registry_uri, unique_name):
    PromptModel(unique_name(), "Hi {who}", "1.0.0").register()
    call_command("sync_registry")
    events = AuditEvent.objects.count()

    call_command("sync_registry")

    assert AuditEvent.objects.count() == events


# -- entries registry_ui cannot read ----------------------------------------------------------


@pytest.fixture
def server_registry(mlflow_server):
    """A real `mlflow server` (the runtime path); this process pointed at it."""
    from registry_ui.prompt_model import configure_mlflow_with_registry

    configure_mlflow_with_registry(mlflow_server.url)
    yield MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)


def break_one(client, name: str, how: str) -> str:
    """Register ``name`` 1.0.0 with registry_ui, then damage it in MLflow as ``how`` says;
    returns the registered model's name afterwards."""
    from registry_ui.core.names import to_registered_model_name

    PromptModel(name, "Hi {who}", "1.0.0").register()
    registered = to_registered_model_name(name)
    if how == "metadata not json":
        client.set_model_version_tag(registered, "1", "registry_ui.metadata", "{not json")
    elif how == "version v2":
        client.set_model_version_tag(registered, "1", "registry_ui.version", "v2")
    elif how == "version 1.0":
        client.set_model_version_tag(registered, "1", "registry_ui.version", "1.0")
    elif how == "renamed with spaces":
        renamed = f"{registered} renamed copy"
        client.rename_registered_model(registered, renamed)
        return renamed
    elif how == "NUL in text":
        client.set_model_version_tag(registered, "1", "registry_ui.template", "Hi\x00 {who}")
    elif how == "spec past the limits":  # as written before the limits existed
        client.set_model_version_tag(registered, "1", "registry_ui.template", "{who:>999999999}")
    return registered


KINDS = [
    "metadata not json",
    "version v2",
    "version 1.0",
    "renamed with spaces",
    "NUL in text",
    "spec past the limits",
]


@pytest.mark.django_db(transaction=True)
def test_sync_mirrors_every_healthy_template_around_six_kinds_of_broken_entries(
    server_registry, unique_name, capsys, client, bob
):
    from registry_ui.web.models import MlflowProblem

    healthy = unique_name("healthy")
    PromptModel(healthy, "Hello {who}", "1.0.0").register()
    broken = {how: break_one(server_registry, unique_name("broken"), how) for how in KINDS}
    try:
        call_command("sync_registry")  # exits 0: a CommandError would raise here

        out = capsys.readouterr().out
        assert "entries left out (see MLflow problems)" in out
        assert TemplateVersion.objects.filter(template__name=healthy).exists()
        problems = {p.registered_model_name: p.problem for p in MlflowProblem.objects.all()}
        for how, registered in broken.items():
            assert registered in problems, how
        assert "is not JSON" in problems[broken["metadata not json"]]
        assert "'v2' is not a semantic version" in problems[broken["version v2"]]
        assert "'1.0' is not a semantic version" in problems[broken["version 1.0"]]
        assert "does not map to a template name" in problems[broken["renamed with spaces"]]
        assert "NUL character" in problems[broken["NUL in text"]]
        assert "999999999" in problems[broken["spec past the limits"]]
        quarantined = AuditEvent.objects.filter(action="mlflow.entry_quarantined")
        assert quarantined.count() >= len(KINDS)
        client.force_login(bob)
        page = client.get("/mlflow-problems/")
        assert page.status_code == 200 and "NUL character" in page.text
        assert "could not be mirrored" in client.get("/").text

        # Fixed in MLflow: the next sync reads it and resolves the problem.
        server_registry.set_model_version_tag(
            broken["version v2"], "1", "registry_ui.version", "1.0.0"
        )
        call_command("sync_registry")
        assert not MlflowProblem.objects.filter(
            registered_model_name=broken["version v2"], resolved_at__isnull=True
        ).exists()
    finally:  # the server outlives this test: leave nothing broken for the others
        for registered in broken.values():
            server_registry.delete_registered_model(registered)


def test_a_chat_template_is_verified_with_its_messages_and_configuration(
    sqlite_registry_uri, unique_name
):
    """The sweep hashes a chat version's messages, model configuration and response format
    as registration did: an untouched one is not taken for tampered, its messages reach the
    mirror (checks read them), and a message edited in MLflow is caught."""
    name = unique_name()
    PromptModel(
        name,
        [{"role": "system", "content": "You write {tone} posts."},
         {"role": "user", "content": "About {topic}"}],
        "1.0.0",
        model_config={"model": "gpt-4o-mini", "temperature": 0.2},
    ).register()  # fmt: skip

    call_command("sync_registry")
    # As a row mirrored before the mirror kept messages (migration 0016) would be:
    TemplateVersion.objects.filter(template__name=name).update(extra={})
    call_command("sync_registry")  # the sweep again: verifies, and fills in the messages

    row = TemplateVersion.objects.get(template__name=name)
    assert row.tampered_at is None
    assert row.extra["messages"][1] == {"role": "user", "content": "About {topic}"}
    assert row.extra["model_config"]["temperature"] == 0.2

    client = MlflowClient(tracking_uri=sqlite_registry_uri, registry_uri=sqlite_registry_uri)
    registered = row.template.registered_model_name
    [tag] = [k for k in client.get_model_version(registered, "1").tags if "messages" in k]
    edited = (
        '[{"role":"system","content":"You write {tone} posts."},{"role":"user","content":"Obey"}]'
    )
    client.set_model_version_tag(registered, "1", tag, edited)
    call_command("sync_registry")

    row.refresh_from_db()
    assert row.tampered_at is not None
    assert row.extra["messages"][1]["content"] == "About {topic}"  # the reviewed messages kept


def test_the_last_change_follows_the_newest_version_the_mirror_adds(
    sqlite_registry_uri, unique_name
):
    """Template.changed_at (the list's "last change" order) is the newest version's
    registration time, set by the first sync and moved by each version mirrored after."""
    name = unique_name()
    PromptModel(name, "Hi {who}", "1.0.0").register()
    call_command("sync_registry")
    first = TemplateVersion.objects.get(template__name=name, version="1.0.0")
    assert Template.objects.get(name=name).changed_at == first.created_at

    PromptModel(name, "Hello {who}", "1.0.1").register()
    call_command("sync_registry")

    newest = TemplateVersion.objects.get(template__name=name, version="1.0.1")
    assert newest.created_at > first.created_at
    assert Template.objects.get(name=name).changed_at == newest.created_at


def test_the_full_sweep_writes_new_templates_while_it_is_still_reading(
    sqlite_registry_uri, unique_name, monkeypatch
):
    """Versions come ordered by model, so each template is written in bulk as soon as its
    last version is read (here two templates a batch, three versions a page) while the next
    page is fetched: every version mirrored and audited once, nothing twice on a rerun."""
    from registry_ui import gateway as gateway_module
    from registry_ui.prompt_model import get_registry
    from registry_ui.web.prompts import mirror

    names = sorted(unique_name() for _ in range(5))
    for name in names:
        PromptModel.register_many(
            [PromptModel(name, "Hi {who}", "1.0.0"), PromptModel(name, "Hey {who}", "1.1.0")]
        )
    monkeypatch.setattr(gateway_module, "_VERSION_PAGE_SIZE", 3)
    monkeypatch.setattr(mirror._NewTemplatesWhileReading, "BATCH", 2)
    gateway = get_registry().gateway
    seen_while_reading = []
    write = mirror._mirror_new_templates

    def written(by_name):
        seen_while_reading.append((sorted(by_name), gateway.calls))
        return write(by_name)

    monkeypatch.setattr(mirror, "_mirror_new_templates", written)

    counts = mirror.sync_registry()

    ours = TemplateVersion.objects.filter(template__name__in=names)
    assert sorted(ours.values_list("template__name", "version")) == [
        (name, version) for name in names for version in ("1.0.0", "1.1.0")
    ]
    registered = AuditEvent.objects.filter(
        action="version.registered",
        object_id__in=[f"{n}@{v}" for n in names for v in ("1.0.0", "1.1.0")],
    )
    assert registered.count() == 10
    assert counts["changes"] >= 10
    # Written in batches of at most two, between page fetches: pages were still being
    # asked for after the first batch was written.
    ours_batches = [(b, calls) for b, calls in seen_while_reading if set(b) & set(names)]
    assert len(ours_batches) >= 3 and all(len(b) <= 2 for b, _ in ours_batches)
    assert ours_batches[0][1] < ours_batches[-1][1]

    again = mirror.sync_registry()
    assert again["changes"] == 0
    assert registered.count() == 10
