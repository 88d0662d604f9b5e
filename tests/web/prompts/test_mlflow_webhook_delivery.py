"""A real `mlflow server` delivers its signed registry webhook to the live dashboard."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from registry_ui.prompt_model import PromptModel
from registry_ui.web.models import AuditEvent, TemplateVersion
from tests.support.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "webhook-secret-for-tests"


@pytest.fixture
def webhook_secret(settings, in_process_tasks):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET


def test_a_version_created_in_mlflow_reaches_the_mirror_through_the_webhook(
    webhook_server, live_server, webhook_secret, unique_name
):
    client = MlflowClient(tracking_uri=webhook_server.url, registry_uri=webhook_server.url)
    client.create_webhook(
        name="registry-ui",
        url=f"{live_server.url}/webhooks/mlflow",
        events=["model_version.created", "model_version_alias.created"],
        secret=SECRET,
    )
    name = unique_name()

    PromptModel(name, "Hi {who}", "1.0.0").register()

    wait_for(
        lambda: TemplateVersion.objects.filter(template__name=name, version="1.0.0").exists(),
        timeout=30,
        message="the webhook delivery to mirror the new version",
    )
    event = AuditEvent.objects.get(object_id=f"{name}@1.0.0", action="version.registered")
    assert event.source == "external"


def test_text_edited_in_mlflow_is_flagged_through_the_webhook_within_seconds(
    webhook_server, live_server, webhook_secret, unique_name
):
    import time

    from registry_ui.core.names import to_registered_model_name
    from registry_ui.web.models import TemplateFlag
    from registry_ui.web.prompts.mirror import sync_registry

    client = MlflowClient(tracking_uri=webhook_server.url, registry_uri=webhook_server.url)
    name = unique_name()
    PromptModel(name, "Hi {who}", "1.0.0").register()
    sync_registry()
    client.create_webhook(
        name="registry-ui-tags",
        url=f"{live_server.url}/webhooks/mlflow",
        events=["model_version_tag.set", "model_version_alias.created"],
        secret=SECRET,
    )
    started = time.monotonic()

    client.set_model_version_tag(
        to_registered_model_name(name), "1", "registry_ui.template", "INJECTED {who}"
    )

    wait_for(
        lambda: TemplateFlag.objects.filter(template__name=name, kind="content_mismatch").exists(),
        timeout=30,
        message="the webhook delivery to flag the edited text",
    )
    seconds = time.monotonic() - started
    print(f"edited text flagged through the webhook in {seconds:.2f} s")
    assert TemplateVersion.objects.get(template__name=name).tampered_at is not None
