"""Changes made in MLflow outside registry_ui, against a real `mlflow server`: text edited
after review, versions and models deleted (and re-created). Each is mirrored, audited as
external and flagged; the runtime (load_from_registry) never serves edited text.

Tasks run in-process; the sync is what beat (or a webhook) runs.
"""

from __future__ import annotations

import pytest

from registry_ui.core.errors import ContentMismatchError
from registry_ui.core.names import to_registered_model_name
from registry_ui.core.policy import PolicyError
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import AuditEvent, PromotionRequest, TemplateFlag, TemplateVersion
from registry_ui.web.prompts.mirror import sync_registry
from registry_ui.web.reviews import services as reviews

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]


def in_production(name: str) -> None:
    """1.0.0 in production, 1.1.0 in staging, moved by registry_ui and mirrored."""
    PromptModel.register_many(
        [PromptModel(name, "Hello {x}", "1.0.0", metadata={"author": "alice"}),
         PromptModel(name, "Hello {x}, welcome", "1.1.0", metadata={"author": "alice"})]
    )  # fmt: skip
    registry = get_registry()
    registry.promote(name, "1.0.0", "staging")
    registry.promote(name, "1.0.0", "production")
    registry.promote(name, "1.1.0", "staging")
    sync_registry()


def test_text_edited_between_two_approvals_is_never_carried_out_or_served(
    plain, unique_name, erin, bob, carol, client
):
    name = unique_name()
    in_production(name)
    request = reviews.file_request(
        erin, template_name=name, version="1.1.0", target="production", justification="ready"
    )
    reviews.approve(bob, request.pk)
    # Between the approvals, someone edits the text in MLflow's UI (the hash tag stays).
    plain.set_model_version_tag(
        to_registered_model_name(name), "2", "registry_ui.template", "INJECTED {x}"
    )

    reviews.approve(carol, request.pk)  # the worker runs at once (in-process)

    request.refresh_from_db()
    assert request.status == "failed"
    assert "edited in MLflow after review" in request.outcome
    assert get_registry().gateway.alias_map(name) == {"production": "1", "staging": "2"}
    with pytest.raises(ContentMismatchError, match="no longer matches the content hash"):
        PromptModel.load_from_registry(name, version="1.1.0")
    with pytest.raises(ContentMismatchError):
        PromptModel.load_from_registry(name, stage="staging")
    assert PromptModel.load_from_registry(name).template == "Hello {x}"  # production: intact
    flag = TemplateFlag.objects.get(template__name=name, kind="content_mismatch")
    assert flag.version == "1.1.0"

    summary = sync_registry()

    assert summary["tampered"] >= 1
    row = TemplateVersion.objects.get(template__name=name, version="1.1.0")
    assert row.tampered_at is not None and row.text == "Hello {x}, welcome"  # the reviewed text
    event = AuditEvent.objects.get(action="version.tampered", object_id=f"{name}@1.1.0")
    assert event.source == "external"
    with pytest.raises(PolicyError, match="no longer matches its content hash"):
        reviews.file_request(
            erin, template_name=name, version="1.1.0", target="production", justification="again"
        )
    client.force_login(bob)
    page = client.get(f"/templates/{name}")
    assert "text no longer matches its content hash" in page.text.lower()
    version_page = client.get(f"/templates/{name}/-/versions/1.1.0")
    assert "Changed in MLflow after review" in version_page.text
    assert "Request production" not in version_page.text


def test_deleting_the_production_version_is_seen_flagged_and_blocks_requests(
    plain, unique_name, erin
):
    name = unique_name()
    in_production(name)
    open_request = reviews.file_request(
        erin, template_name=name, version="1.1.0", target="production", justification="next"
    )
    plain.delete_model_version(to_registered_model_name(name), "1")

    summary = sync_registry()

    assert summary["deleted"] == 1
    row = TemplateVersion.objects.get(template__name=name, version="1.0.0")
    assert row.missing_since is not None and row.stage == "archived"
    assert AuditEvent.objects.filter(
        action="version.deleted", object_id=f"{name}@1.0.0", source="external"
    ).exists()
    flag = TemplateFlag.objects.get(template__name=name, kind="outside_change")
    assert "deleted in MLflow" in flag.message and "production" in flag.message
    assert PromotionRequest.objects.get(pk=open_request.pk).status == "stale"
    with pytest.raises(PolicyError, match="deleted in MLflow"):
        reviews.file_rollback(bob_like(erin), template_name=name, version="1.0.0", reason="r")


def bob_like(user):
    """A reviewer (rollbacks need one): the deletion refuses before the role matters."""
    from tests.support.users import member

    return member("rolls-back", "reviewers")


def test_a_model_deleted_and_re_created_is_picked_up_without_a_restart(plain, unique_name):
    name = unique_name()
    PromptModel(name, "Old {x}", "1.0.0", metadata={"author": "alice"}).register()
    sync_registry()
    plain.delete_registered_model(to_registered_model_name(name))

    assert sync_registry()["deleted"] == 1
    # The same process registers the template again: its cache of known models is stale.
    PromptModel(name, "New {x}", "1.0.0", metadata={"author": "alice"}).register()
    sync_registry()

    row = TemplateVersion.objects.get(template__name=name, version="1.0.0")
    assert (row.text, row.missing_since) == ("New {x}", None)
    assert AuditEvent.objects.filter(
        action="version.registered_again", object_id=f"{name}@1.0.0"
    ).exists()
    assert PromptModel.load_from_registry(name, version="1.0.0").template == "New {x}"


def test_a_version_added_outside_without_our_tags_is_flagged(plain, unique_name):
    name = unique_name()
    PromptModel(name, "Hi {x}", "1.0.0", metadata={"author": "alice"}).register()
    registered = to_registered_model_name(name)
    source = plain.get_model_version(registered, "1")
    plain.create_model_version(registered, source=source.source, run_id=source.run_id)

    sync_registry()

    flag = TemplateFlag.objects.get(template__name=name, kind="outside_change")
    assert "MLflow version 2" in flag.message and "none of registry_ui's tags" in flag.message
    assert AuditEvent.objects.filter(
        action="template.flagged", object_id=name, source="external"
    ).exists()
