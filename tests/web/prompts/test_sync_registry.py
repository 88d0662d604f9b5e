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
