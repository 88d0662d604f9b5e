"""Every kind of change made in MLflow outside registry_ui, against a real `mlflow server`.

One test per kind (issue 15's list), each checking the six things a team relies on: the
mirror, the audit event (source external), the flag a reviewer sees, the template page, the
runtime (PromptModel.load_from_registry) and the legacy view (get_latest_versions).
Setup for each: 1.0.0 (MLflow version 1) in production, 1.1.0 (version 2) in staging,
moved by registry_ui and mirrored; then another program changes MLflow and beat's sync runs.
"""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from registry_ui.core.errors import AmbiguousVersionError, ContentMismatchError, NotFoundError
from registry_ui.core.names import to_registered_model_name
from registry_ui.gateway import UnreadableEntry
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import (
    AuditEvent,
    MlflowProblem,
    TemplateFlag,
    TemplateVersion,
)
from registry_ui.web.prompts.mirror import sync_changes, sync_registry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]


@pytest.fixture
def template(plain, unique_name):
    name = unique_name()
    PromptModel.register_many(
        [PromptModel(name, "Hello {x}", "1.0.0", metadata={"author": "alice"}),
         PromptModel(name, "Hello {x}, welcome", "1.1.0", metadata={"author": "alice"})]
    )  # fmt: skip
    registry = get_registry()
    registry.promote(name, "1.0.0", "staging")
    registry.promote(name, "1.0.0", "production")
    registry.promote(name, "1.1.0", "staging")
    sync_registry()
    return name


def mirror(name: str) -> dict[str, tuple]:
    rows = TemplateVersion.objects.filter(template__name=name)
    return {
        row.version: (row.stage, row.missing_since is not None, row.tampered_at is not None)
        for row in rows
    }


def external_events(name: str) -> set[str]:
    return set(
        AuditEvent.objects.filter(object_id__startswith=name, source="external").values_list(
            "action", flat=True
        )
    )


def flags(name: str) -> list[tuple[str, str]]:
    return list(
        TemplateFlag.objects.filter(template__name=name, resolved_at__isnull=True).values_list(
            "kind", "message"
        )
    )


def shown_to_a_reviewer(client, bob, name: str) -> str:
    client.force_login(bob)
    page = client.get(f"/templates/{name}")
    assert page.status_code == 200
    return page.text


def served(name: str, **where) -> str | type:
    """The text load_from_registry serves, or the class of the error it raises."""
    get_registry().invalidate()
    try:
        return PromptModel.load_from_registry(name, **where).template
    except (NotFoundError, ContentMismatchError, AmbiguousVersionError, UnreadableEntry) as error:
        return type(error)


def legacy(plain, registered: str) -> dict[str, str] | type:
    try:
        latest = plain.get_latest_versions(registered, stages=["Production", "Staging"])
    except MlflowException:
        return MlflowException
    return {v.current_stage: v.version for v in latest}


def test_production_alias_moved_outside(plain, template, client, bob):
    registered = to_registered_model_name(template)
    plain.set_registered_model_alias(registered, "production", "2")

    sync_registry()

    assert mirror(template) == {"1.0.0": ("archived", False, False),
                                "1.1.0": ("production", False, False)}  # fmt: skip
    assert "version.stage_changed" in external_events(template)
    [(kind, message)] = flags(template)
    assert kind == "outside_change" and "1.1.0 to production" in message
    assert "Needs a reviewer" in shown_to_a_reviewer(client, bob, template)
    assert served(template) == "Hello {x}, welcome"  # what MLflow now serves, flagged
    # The stage marks follow the aliases, so get_latest_versions agrees with load_prompt.
    assert legacy(plain, registered)["Production"] == "2"


def test_legacy_stage_set_outside_without_the_alias(plain, template, client, bob):
    registered = to_registered_model_name(template)
    plain.transition_model_version_stage(registered, "2", "Production")

    sync_registry()

    assert mirror(template)["1.0.0"] == ("production", False, False)  # aliases decide
    assert "template.flagged" in external_events(template)
    [(kind, message)] = flags(template)
    assert kind == "outside_change" and "legacy stage Production" in message
    assert "Needs a reviewer" in shown_to_a_reviewer(client, bob, template)
    assert served(template) == "Hello {x}"
    # Left for a reviewer (the flag says programs using stages get version 2 meanwhile).
    assert legacy(plain, registered) == {"Production": "2"}


def test_text_tag_edited_outside(plain, template, client, bob):
    registered = to_registered_model_name(template)
    plain.set_model_version_tag(registered, "2", "registry_ui.template", "INJECTED {x}")

    sync_registry()

    assert mirror(template)["1.1.0"] == ("staging", False, True)
    assert TemplateVersion.objects.get(template__name=template, version="1.1.0").text == (
        "Hello {x}, welcome"  # the mirror keeps the reviewed text
    )
    assert "version.tampered" in external_events(template)
    [(kind, _)] = flags(template)
    assert kind == "content_mismatch"
    assert "no longer matches its content hash" in shown_to_a_reviewer(client, bob, template)
    assert served(template, stage="staging") is ContentMismatchError
    assert served(template, version="1.1.0") is ContentMismatchError
    assert served(template) == "Hello {x}"
    assert legacy(plain, registered) == {"Production": "1", "Staging": "2"}


def test_production_version_deleted_outside(plain, template, client, bob):
    registered = to_registered_model_name(template)
    plain.delete_model_version(registered, "1")

    sync_registry()

    assert mirror(template)["1.0.0"] == ("archived", True, False)
    assert "version.deleted" in external_events(template)
    [(kind, message)] = flags(template)
    assert kind == "outside_change" and "deleted in MLflow" in message
    assert "deleted in MLflow" in shown_to_a_reviewer(client, bob, template)
    assert served(template) is NotFoundError
    assert served(template, version="1.0.0") is NotFoundError
    assert legacy(plain, registered) == {"Staging": "2"}


def test_model_deleted_outside(plain, template, client, bob):
    registered = to_registered_model_name(template)
    plain.delete_registered_model(registered)

    sync_registry()

    assert mirror(template) == {"1.0.0": ("archived", True, False),
                                "1.1.0": ("archived", True, False)}  # fmt: skip
    assert "version.deleted" in external_events(template)
    assert {kind for kind, _ in flags(template)} == {"outside_change"}
    assert "deleted in MLflow" in shown_to_a_reviewer(client, bob, template)
    assert served(template) is NotFoundError
    assert served(template, stage="staging") is NotFoundError
    assert legacy(plain, registered) is MlflowException


def test_model_renamed_outside(plain, template, client, bob):
    registered = to_registered_model_name(template)
    plain.rename_registered_model(registered, registered + "-renamed")

    sync_registry()

    # Under the old name: gone. Under the new one: not a reviewed template, quarantined.
    assert mirror(template) == {"1.0.0": ("archived", True, False),
                                "1.1.0": ("archived", True, False)}  # fmt: skip
    assert not TemplateVersion.objects.filter(template__name=template + "-renamed").exists()
    problem = MlflowProblem.objects.get(
        registered_model_name=registered + "-renamed", mlflow_version="1"
    )
    assert "renamed outside registry_ui" in problem.problem
    assert "version.deleted" in external_events(template)
    assert AuditEvent.objects.filter(
        action="mlflow.entry_quarantined", object_id__contains=registered + "-renamed"
    ).exists()
    assert {kind for kind, _ in flags(template)} == {"outside_change"}
    assert "Needs a reviewer" in shown_to_a_reviewer(client, bob, template)
    assert served(template) is NotFoundError
    assert served(template + "-renamed") is UnreadableEntry  # refused under the new name
    assert legacy(plain, registered) is MlflowException


def test_a_renamed_model_stays_quarantined_through_the_incremental_passes(plain, template):
    """The periodic pass reads the renamed model (no template has its timestamp) and finds
    the same problems each time: each stays one open row, quarantined (audited) once, and
    the pass goes on working; it used to fail on the open rows it had not looked up."""
    registered = to_registered_model_name(template) + "-renamed"
    plain.rename_registered_model(to_registered_model_name(template), registered)
    sync_registry()

    for _ in range(2):
        sync_changes()

    open_problems = MlflowProblem.objects.filter(
        registered_model_name=registered, resolved_at__isnull=True
    )
    assert sorted(open_problems.values_list("mlflow_version", flat=True)) == ["1", "2"]
    assert (
        AuditEvent.objects.filter(
            action="mlflow.entry_quarantined", object_id__startswith=registered + "/"
        ).count()
        == 2
    )


def test_version_added_outside_with_copied_tags(plain, template, client, bob):
    registered = to_registered_model_name(template)
    source = plain.get_model_version(registered, "2")
    tags = {**source.tags, "registry_ui.version": "1.2.0", "registry_ui.template": "Hi {x}!!"}
    plain.create_model_version(registered, source=source.source, run_id=source.run_id, tags=tags)

    sync_registry()

    assert mirror(template)["1.2.0"] == ("archived", False, True)  # hash copied: not its text
    assert {"version.registered", "version.tampered"} <= external_events(template)
    [(kind, _)] = flags(template)
    assert kind == "content_mismatch"
    assert "Needs a reviewer" in shown_to_a_reviewer(client, bob, template)
    assert served(template, version="1.2.0") is ContentMismatchError
    assert served(template) == "Hello {x}"
    assert legacy(plain, registered) == {"Production": "1", "Staging": "2"}


def test_version_added_outside_without_our_tags(plain, template, client, bob):
    registered = to_registered_model_name(template)
    source = plain.get_model_version(registered, "2")
    plain.create_model_version(registered, source=source.source, run_id=source.run_id)

    sync_registry()

    assert set(mirror(template)) == {"1.0.0", "1.1.0"}  # nothing to mirror: no template
    assert "template.flagged" in external_events(template)
    [(kind, message)] = flags(template)
    assert kind == "outside_change" and "none of registry_ui's tags" in message
    assert "Needs a reviewer" in shown_to_a_reviewer(client, bob, template)
    assert served(template) == "Hello {x}"
    assert legacy(plain, registered) == {"Production": "1", "Staging": "2"}


def test_same_semantic_version_registered_twice_outside(plain, template, client, bob):
    registered = to_registered_model_name(template)
    source = plain.get_model_version(registered, "2")
    tags = {**source.tags, "registry_ui.template": "IMPOSTOR {x}"}
    plain.create_model_version(registered, source=source.source, run_id=source.run_id, tags=tags)

    sync_registry()

    assert mirror(template)["1.1.0"] == ("staging", False, False)  # the first registration
    assert "template.flagged" in external_events(template)
    [(kind, message)] = flags(template)
    assert kind == "duplicate_version" and "ignores MLflow version(s) 3" in message
    assert "Needs a reviewer" in shown_to_a_reviewer(client, bob, template)
    assert served(template, version="1.1.0") is AmbiguousVersionError  # pins never guess
    assert served(template, stage="staging") == "Hello {x}, welcome"  # the alias is exact
    assert legacy(plain, registered) == {"Production": "1", "Staging": "2"}
