"""The holder watch: a production version deleted in MLflow (no webhook for that) is seen
by the next watch tick, against a real `mlflow server`, with two MLflow calls per tick."""

from __future__ import annotations

import pytest

from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import AuditEvent, TemplateFlag, TemplateVersion
from registry_ui.web.prompts.mirror import sync_registry
from registry_ui.web.prompts.tasks import watch_stage_holders_task

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]


def in_production(name: str) -> None:
    PromptModel.register_many(
        [PromptModel(name, "Hello {x}", "1.0.0", metadata={"author": "alice"}),
         PromptModel(name, "Hello {x}, welcome", "1.1.0", metadata={"author": "alice"})]
    )  # fmt: skip
    registry = get_registry()
    registry.promote(name, "1.0.0", "staging")
    registry.promote(name, "1.0.0", "production")
    registry.promote(name, "1.1.0", "staging")


def test_a_watch_tick_with_nothing_changed_syncs_nothing_in_two_mlflow_calls(plain, unique_name):
    in_production(unique_name())
    sync_registry()
    gateway = get_registry().gateway
    calls = gateway.calls

    seen = watch_stage_holders_task()

    assert seen["templates_synced"] == 0 and seen["holders"] >= 2
    assert gateway.calls - calls == 2


@pytest.mark.parametrize("how", ["version deleted", "model deleted", "model renamed"])
def test_a_production_holder_gone_from_mlflow_is_flagged_by_the_next_tick(
    plain, unique_name, how, client, bob
):
    name = unique_name()
    in_production(name)
    sync_registry()
    registered = to_registered_model_name(name)
    if how == "version deleted":
        plain.delete_model_version(registered, "1")
    elif how == "model deleted":
        plain.delete_registered_model(registered)
    else:
        plain.rename_registered_model(registered, registered + "-moved")

    seen = watch_stage_holders_task()

    assert seen["templates_synced"] == 1
    row = TemplateVersion.objects.get(template__name=name, version="1.0.0")
    assert row.missing_since is not None
    assert AuditEvent.objects.filter(
        action="version.deleted", object_id=f"{name}@1.0.0", source="external"
    ).exists()
    flag = TemplateFlag.objects.get(template__name=name, version="1.0.0")
    assert "deleted in MLflow" in flag.message and "production" in flag.message
    client.force_login(bob)
    assert "Needs a reviewer" in client.get(f"/templates/{name}").text
    # Mirrored as gone: the next tick has nothing left to send.
    assert watch_stage_holders_task()["templates_synced"] == 0
