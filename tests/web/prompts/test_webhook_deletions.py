"""Deletions seen through the webhook path (issues 15 and 20), against a real `mlflow server`.

MLflow sends no webhook for a deleted version or model (3.17 has no such event), but any
delivery naming the template (an alias deleted with the version, a tag set) runs the
single-template sync, which reads the template in full and verifies it as the full sweep
does: a deleted version or a deleted model is marked missing, flagged and audited there.
"""

from __future__ import annotations

import pytest

from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import AuditEvent, MlflowProblem, TemplateFlag, TemplateVersion
from registry_ui.web.prompts.mirror import sync_one
from tests.web.prompts.test_mlflow_webhook import SECRET, deliver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_process_tasks")]


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET


def mirrored(name: str) -> None:
    """1.0.0 in production, 1.1.0 in dev, both mirrored through a webhook-triggered sync."""
    PromptModel.register_many(
        [PromptModel(name, "Hello {x}", "1.0.0", metadata={"author": "alice"}),
         PromptModel(name, "Hello {x}, welcome", "1.1.0", metadata={"author": "alice"})]
    )  # fmt: skip
    registry = get_registry()
    registry.promote(name, "1.0.0", "staging")
    registry.promote(name, "1.0.0", "production")
    sync_one(name)
    assert TemplateVersion.objects.filter(template__name=name, missing_since=None).count() == 2


def alias_deleted(name: str) -> dict:
    return {"entity": "model_version_alias", "action": "deleted", "timestamp": "now",
            "data": {"name": to_registered_model_name(name), "alias": "production"}}  # fmt: skip


def test_a_version_deleted_in_mlflow_is_marked_flagged_and_audited_by_a_webhook(
    plain, client, unique_name
):
    name = unique_name()
    mirrored(name)
    plain.delete_model_version(to_registered_model_name(name), "1")  # the production one

    response = deliver(client, alias_deleted(name), delivery_id=f"{name}-1")

    assert response.status_code == 202
    row = TemplateVersion.objects.get(template__name=name, version="1.0.0")
    assert row.missing_since is not None and row.stage == "archived"
    assert TemplateVersion.objects.get(template__name=name, version="1.1.0").missing_since is None
    event = AuditEvent.objects.get(action="version.deleted", object_id=f"{name}@1.0.0")
    assert event.source == "external"
    flag = TemplateFlag.objects.get(template__name=name, kind="outside_change", version="1.0.0")
    assert "deleted in MLflow" in flag.message and "production" in flag.message


def test_a_model_deleted_in_mlflow_has_every_version_marked_by_a_webhook(
    plain, client, unique_name
):
    name = unique_name()
    mirrored(name)
    plain.delete_registered_model(to_registered_model_name(name))

    response = deliver(client, alias_deleted(name), delivery_id=f"{name}-2")

    assert response.status_code == 202
    rows = TemplateVersion.objects.filter(template__name=name)
    assert all(row.missing_since is not None for row in rows) and len(rows) == 2
    assert set(
        AuditEvent.objects.filter(action="version.deleted", source="external")
        .filter(object_id__startswith=f"{name}@")
        .values_list("object_id", flat=True)
    ) == {f"{name}@1.0.0", f"{name}@1.1.0"}
    assert TemplateFlag.objects.filter(template__name=name, kind="outside_change").count() == 2


def test_an_unreadable_version_is_quarantined_by_a_webhook_not_taken_for_deleted(
    plain, client, unique_name
):
    name = unique_name()
    mirrored(name)
    plain.set_model_version_tag(
        to_registered_model_name(name), "2", "registry_ui.metadata", "{not json"
    )

    deliver(client, alias_deleted(name), delivery_id=f"{name}-3")

    row = TemplateVersion.objects.get(template__name=name, version="1.1.0")
    assert row.missing_since is None
    assert not AuditEvent.objects.filter(action="version.deleted", object_id=f"{name}@1.1.0")
    problem = MlflowProblem.objects.get(template_name=name, resolved_at=None)
    assert problem.mlflow_version == "2"
