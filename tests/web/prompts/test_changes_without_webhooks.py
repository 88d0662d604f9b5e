"""Changes MLflow sends no webhook for, seen by one incremental pass (beat runs it every
SYNC_INTERVAL_SECONDS, 4 s by default), against a real `mlflow server`: a legacy stage set
by hand and a dev version deleted, each in two MLflow calls. Passes never overlap."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import AuditEvent, TemplateFlag, TemplateVersion
from registry_ui.web.prompts import tasks
from registry_ui.web.prompts.mirror import sync_registry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]


@pytest.fixture
def three_versions(plain, unique_name):
    """1.0.0 in production, 1.0.1 in staging, 1.0.2 in dev (MLflow versions 1-3), mirrored."""
    name = unique_name()
    PromptModel.register_many(
        [PromptModel(name, text, number, metadata={"author": "alice"})
         for number, text in (("1.0.0", "Hi {x}"), ("1.0.1", "Hi {x}!"), ("1.0.2", "Hi {x}!!"))]
    )  # fmt: skip
    registry = get_registry()
    registry.promote(name, "1.0.0", "staging")
    registry.promote(name, "1.0.0", "production")
    registry.promote(name, "1.0.1", "staging")
    sync_registry()
    return name


def test_a_legacy_stage_set_by_hand_is_flagged_by_the_next_pass(plain, three_versions, client, bob):
    name = three_versions
    plain.transition_model_version_stage(to_registered_model_name(name), "3", "Production")

    summary = tasks.sync_changes_task()

    assert summary["mlflow_calls"] == 3 and summary["marks_reported"] == 1
    flag = TemplateFlag.objects.get(template__name=name)
    assert "legacy stage Production" in flag.message and flag.version == "1.0.2"
    assert AuditEvent.objects.filter(
        action="template.flagged", object_id=name, source="external"
    ).exists()
    client.force_login(bob)
    assert "Needs a reviewer" in client.get(f"/templates/{name}").text


def test_a_dev_version_deleted_is_seen_by_the_next_pass(plain, three_versions):
    name = three_versions
    plain.delete_model_version(to_registered_model_name(name), "3")

    summary = tasks.sync_changes_task()

    assert summary["mlflow_calls"] == 3 and summary["deleted"] == 1
    row = TemplateVersion.objects.get(template__name=name, version="1.0.2")
    assert row.missing_since is not None
    assert "deleted in MLflow" in TemplateFlag.objects.get(template__name=name).message


def test_a_pass_still_running_makes_the_next_one_return_at_once(plain, three_versions):
    cache.add(tasks._PASS_RUNNING, True, timeout=60)  # another worker's pass, running
    try:
        assert tasks.sync_changes_task() == {"skipped": 1}
    finally:
        cache.delete(tasks._PASS_RUNNING)

    assert "skipped" not in tasks.sync_changes_task()
