"""The incremental sync (issue 20): a pass reads only the templates whose registered model's
MLflow timestamp moved; webhooks and the full sweep see what moves no timestamp.

Each test has a registry of its own (a fresh MLflow SQLite store: the shared one changes
under other tests) with many templates, changes one version of one template the way
another program would, with a plain MlflowClient, and checks which templates the pass read
(``gateway.model_stamps``: the templates whose versions were searched), how many MLflow
calls it made, and that the change reached the mirror.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import PromptModel, configure_mlflow_with_registry, get_registry
from registry_ui.web.models import AuditEvent, Template, TemplateFlag, TemplateVersion
from registry_ui.web.prompts.mirror import sync_changes, sync_registry
from registry_ui.web.prompts.tasks import sync_template

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_process_tasks")]

TEMPLATES = 12
VERSIONS = 3


def name_of(t: int) -> str:
    return f"inc/team-{t % 3}/template-{t}"


@pytest.fixture
def registry(tmp_path, mlflow_sqlite_uri):
    """TEMPLATES x VERSIONS in a registry of this test's own, mirrored by a first pass
    (a full sweep: the mirror has never been swept); yields another program's client."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    configure_mlflow_with_registry(uri)
    PromptModel.register_many(
        [
            PromptModel(name_of(t), "Hi {who}" + "!" * v, f"1.0.{v}", metadata={"author": "a"})
            for t in range(TEMPLATES)
            for v in range(VERSIONS)
        ]
    )
    get_registry().promote(name_of(4), "1.0.0", "staging")
    first = sync_changes()
    assert first["full_sweep"] == 1 and first["versions"] == TEMPLATES * VERSIONS
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    configure_mlflow_with_registry(mlflow_sqlite_uri)


def one_pass(pass_=sync_changes) -> tuple[dict, set[str]]:
    """Run a pass; return its summary and the templates it read."""
    gateway = get_registry().gateway
    gateway.model_stamps = {}
    summary = pass_()
    return summary, set(gateway.model_stamps)


def stages(name: str) -> dict[str, str]:
    return dict(TemplateVersion.objects.filter(template__name=name).values_list("version", "stage"))


def test_a_pass_with_nothing_changed_reads_no_template_in_one_call(registry):
    summary, read = one_pass()

    assert read == set()
    assert summary["templates"] == 0 and summary["changes"] == 0
    # The changed models, newest first: none; the changed native prompts: none.
    assert summary["mlflow_calls"] == 2


def test_once_the_newest_change_is_minutes_old_a_pass_lists_only_newer_models(
    registry, monkeypatch
):
    from registry_ui.web.prompts import mirror

    gateway = get_registry().gateway
    newest = max(gateway.model_stamps.values())
    listed = []
    changed_since = gateway.models_changed_since
    monkeypatch.setattr(
        gateway, "models_changed_since", lambda since: listed.append(since) or changed_since(since)
    )
    one_pass()
    assert listed[-1] == newest - mirror.SYNC_OVERLAP_MS  # a write may still be committing

    monkeypatch.setattr(mirror, "_now_ms", lambda: newest + 3 * mirror.SYNC_OVERLAP_MS)
    one_pass()
    assert listed[-1] == newest + 1  # none can be: only models stamped after it are listed
    PromptModel(name_of(1), "Hello {who}", "1.1.0", metadata={"author": "a"}).register()
    assert one_pass()[1] == {name_of(1)}


def test_a_new_version_is_read_for_its_template_only_and_mirrored(registry):
    name = name_of(7)
    PromptModel(name, "Hello {who}", "1.1.0", metadata={"author": "a"}).register()

    summary, read = one_pass()

    assert read == {name}
    assert summary["mlflow_calls"] == 3  # changed models, their versions, native prompts
    assert summary["versions"] == VERSIONS + 1
    assert TemplateVersion.objects.get(template__name=name, version="1.1.0").text == "Hello {who}"
    assert AuditEvent.objects.filter(
        action="version.registered", object_id=f"{name}@1.1.0", source="external"
    ).exists()
    assert one_pass()[1] == set()  # and read once only


def test_a_version_deleted_outside_is_read_for_its_template_only_and_marked(registry):
    name = name_of(4)
    registry.delete_model_version(to_registered_model_name(name), "1")  # 1.0.0, in staging

    summary, read = one_pass()

    assert read == {name}
    assert summary["deleted"] == 1
    row = TemplateVersion.objects.get(template__name=name, version="1.0.0")
    assert row.missing_since is not None and row.stage == "archived"
    assert AuditEvent.objects.filter(
        action="version.deleted", object_id=f"{name}@1.0.0", source="external"
    ).exists()
    flag = TemplateFlag.objects.get(template__name=name, kind="outside_change")
    assert "deleted in MLflow" in flag.message and "staging" in flag.message


def test_a_legacy_stage_set_outside_is_read_for_its_template_only_and_flagged(registry):
    name = name_of(9)
    registry.transition_model_version_stage(to_registered_model_name(name), "2", "Production")

    summary, read = one_pass()

    assert read == {name}
    assert summary["marks_reported"] == 1
    flag = TemplateFlag.objects.get(template__name=name, kind="outside_change")
    assert "legacy stage Production" in flag.message


def test_a_whole_model_deleted_and_its_versions_gone_is_seen_by_the_sweep(registry):
    name = name_of(2)
    registry.delete_registered_model(to_registered_model_name(name))
    assert one_pass()[1] == set()  # a deleted model moves no timestamp it could show

    summary, _ = one_pass(sync_registry)

    assert summary["deleted"] == VERSIONS
    assert not TemplateVersion.objects.filter(template__name=name, missing_since__isnull=True)


def test_an_alias_moved_outside_moves_no_timestamp_the_webhook_sync_reads_that_template(
    registry,
):
    name = name_of(5)
    registry.set_registered_model_alias(to_registered_model_name(name), "production", "3")
    assert one_pass()[1] == set()  # measured: aliases move no timestamp
    assert stages(name)["1.0.2"] == "dev"

    gateway = get_registry().gateway
    calls = gateway.calls
    gateway.model_stamps = {}
    sync_template.delay(name)  # what a model_version_alias.created delivery runs

    assert set(gateway.model_stamps) == {name}
    # Read: the model (its aliases), then its versions; written: the stage tag and legacy
    # stage brought in step with the alias, as the full sweep does.
    assert gateway.calls - calls == 2 + 2
    assert stages(name)["1.0.2"] == "production"
    assert Template.objects.get(name=name).external_production_change
    # The legacy stage written moved the model's timestamp: the next pass reads it once,
    # finds nothing to do, and the one after reads nothing.
    summary, read = one_pass()
    assert read == {name} and summary["changes"] == 0
    assert one_pass()[1] == set()


def test_a_tag_edited_outside_is_caught_by_the_full_sweep_that_no_timestamp_reveals(registry):
    name = name_of(11)
    registry.set_model_version_tag(
        to_registered_model_name(name), "2", "registry_ui.template", "INJECTED {who}"
    )
    summary, read = one_pass()
    assert read == set() and summary["tampered"] == 0  # no timestamp moved

    summary, read = one_pass(sync_registry)

    assert summary["tampered"] == 1
    assert len(read) == TEMPLATES  # the sweep reads every template
    row = TemplateVersion.objects.get(template__name=name, version="1.0.1")
    assert row.tampered_at is not None and row.text == "Hi {who}!"  # the registered text
    assert TemplateFlag.objects.filter(
        template__name=name, kind="content_mismatch", version="1.0.1"
    ).exists()


def test_a_tag_edited_outside_is_flagged_by_the_webhook_sync_of_that_template(registry):
    name = name_of(3)
    registry.set_model_version_tag(
        to_registered_model_name(name), "3", "registry_ui.template", "INJECTED {who}"
    )
    gateway = get_registry().gateway
    gateway.model_stamps = {}

    assert sync_template.delay(name).get() == 1  # a model_version_tag.set delivery

    assert set(gateway.model_stamps) == {name}
    assert TemplateVersion.objects.get(template__name=name, version="1.0.2").tampered_at


def test_a_hundred_changes_are_read_in_a_constant_number_of_calls(registry):
    for t in range(TEMPLATES):
        PromptModel(name_of(t), "Later {who}", "2.0.0", metadata={"author": "a"}).register()

    summary, read = one_pass()

    assert read == {name_of(t) for t in range(TEMPLATES)}
    assert summary["changes"] == TEMPLATES
    assert summary["mlflow_calls"] == 3  # up to 100 models per version search; native


def test_a_native_prompt_version_added_outside_is_read_by_the_next_pass(registry):
    """MLflow's own prompts ride the same pass: a new version moves the prompt's timestamp,
    so the pass lists that prompt (one call) and mirrors it alone (two more)."""
    from registry_ui.web.models import NativePrompt, NativePromptVersion

    registry.register_prompt("inc.native-a", "Hello {{who}}")
    registry.register_prompt("inc.native-b", "Bye {{who}}")
    first = sync_changes()  # a new prompt is a change too: both are mirrored
    assert set(NativePrompt.objects.values_list("name", flat=True)) >= {
        "inc.native-a",
        "inc.native-b",
    }
    assert first["native_prompts_read"] == 2
    registry.register_prompt("inc.native-b", "Bye {{who}}, see you in {{place}}")

    summary, read = one_pass()

    assert read == set()  # no template read
    assert summary["native_prompts_read"] == 1 and summary["native_changes"] == 1
    assert summary["mlflow_calls"] == 4  # models, native prompts, then prompt b's two
    versions = NativePromptVersion.objects.filter(prompt__name="inc.native-b")
    assert sorted(versions.values_list("number", flat=True)) == [1, 2]
    assert sorted(versions.get(number=2).variables) == ["place", "who"]
    idle, _ = one_pass()
    assert idle["native_prompts_read"] == 0 and idle["mlflow_calls"] == 2
