"""PromptModel over a real MLflow registry: a local SQLite store and an `mlflow server`."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from registry_ui.core.errors import (
    BatchRegistrationError,
    NameCollisionError,
    NotFoundError,
)
from registry_ui.prompt_model import (
    ModelStage,
    PromptModel,
    StageTransitionError,
    TemplateValidationError,
    get_registry,
)

pytestmark = pytest.mark.usefixtures("registry_uri")

HOOK_V1 = "Check this: {text}"
HOOK_V2 = "🚀 Check this: {text} - {cta}"


def hook(name: str, version: str = "1.0.0", template: str = HOOK_V1, **metadata) -> PromptModel:
    return PromptModel(name, template, version, metadata={"author": "alice", **metadata})


def registered_model_name(name: str) -> str:
    return name.replace("/", ".")


def test_a_plain_mlflow_client_finds_the_production_version_by_alias_and_stage(
    registry_uri, unique_name
):
    name = unique_name()
    model = hook(name).register()
    model.promote_to_staging()
    model.promote_to_production()

    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    by_alias = client.get_model_version_by_alias(registered_model_name(name), "production")
    [by_stage] = client.get_latest_versions(registered_model_name(name), stages=["Production"])
    assert str(by_alias.version) == str(by_stage.version) == model.mlflow_version
    assert by_alias.tags["registry_ui.template"] == HOOK_V1
    assert by_alias.tags["registry_ui.version"] == "1.0.0"
    assert by_alias.tags["registry_ui.stage"] == "production"
    model_tags = client.get_registered_model(registered_model_name(name)).tags
    assert model_tags["registry_ui.template_name"] == name


def test_it_records_who_registered_a_version_in_the_run_its_source_points_into(
    registry_uri, unique_name
):
    model = hook(unique_name()).register(actor="alice", reason="first cut")

    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    version = client.get_model_version(registered_model_name(model.name), model.mlflow_version)
    run = client.get_run(version.run_id)
    assert version.source.startswith(f"runs:/{version.run_id}/")
    assert run.data.tags["registry_ui.registered_by"] == "alice"
    assert run.data.tags["registry_ui.reason"] == "first cut"


def test_it_returns_the_existing_version_when_the_same_content_is_registered_again(unique_name):
    name = unique_name()
    first = hook(name).register()

    again = hook(name).register()

    assert again.mlflow_version == first.mlflow_version
    assert [entry["version"] for entry in again.get_lineage()] == ["1.0.0"]


def test_it_refuses_the_same_version_with_different_content(unique_name):
    name = unique_name()
    hook(name).register()

    with pytest.raises(BatchRegistrationError, match="already registered with different content"):
        hook(name, template="Look at this: {text}").register()


def test_it_refuses_a_version_not_greater_than_the_latest(unique_name):
    name = unique_name()
    hook(name, "1.2.0").register()

    with pytest.raises(
        BatchRegistrationError, match=r"not greater than the latest version 1\.2\.0"
    ):
        hook(name, "1.1.0", "Look at this: {text}").register()


def test_it_refuses_a_bump_smaller_than_the_change_needs_and_names_the_version_that_would_do(
    unique_name,
):
    name = unique_name()
    hook(name, "1.0.0", HOOK_V2).register()

    with pytest.raises(BatchRegistrationError, match=r"removes variable 'cta': needs 2\.0\.0"):
        hook(name, "1.1.0", HOOK_V1).register()


def test_it_moves_a_version_through_each_stage_and_archives_the_one_it_replaces(
    registry_uri, unique_name
):
    name = unique_name()
    v1, v2 = PromptModel.register_many([hook(name), hook(name, "2.0.0", HOOK_V2)])
    v1.promote_to_staging()
    v1.promote_to_production()

    v2.promote_to_staging()
    v2.promote_to_production()

    stages = {entry["version"]: entry["stage"] for entry in v2.get_lineage()}
    assert stages == {"1.0.0": "archived", "2.0.0": "production"}
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    old = client.get_model_version(registered_model_name(name), v1.mlflow_version)
    assert old.current_stage == "Archived"
    assert old.tags["registry_ui.stage"] == "archived"
    assert old.aliases == []


def test_at_most_one_version_holds_staging(unique_name):
    name = unique_name()
    v1, v2 = PromptModel.register_many([hook(name), hook(name, "1.0.1", "Check: {text}")])
    v1.promote_to_staging()

    v2.promote_to_staging()

    stages = {entry["version"]: entry["stage"] for entry in v1.get_lineage()}
    assert stages == {"1.0.0": "archived", "1.0.1": "staging"}


def test_it_refuses_to_skip_staging(unique_name):
    model = hook(unique_name()).register()

    with pytest.raises(StageTransitionError, match="promote it to staging first"):
        model.promote_to_production()

    assert model.get_lineage()[0]["stage"] == "dev"


def test_promoting_again_to_the_same_stage_changes_nothing(unique_name):
    model = hook(unique_name()).register()
    model.promote_to_staging()

    model.promote_to_staging()

    assert model.stage == ModelStage.STAGING


def test_load_from_registry_defaults_to_production_and_also_loads_by_version_and_stage(
    unique_name,
):
    name = unique_name()
    v1, v2 = PromptModel.register_many([hook(name), hook(name, "2.0.0", HOOK_V2)])
    v1.promote_to_staging()
    v1.promote_to_production()
    v2.promote_to_staging()

    production = PromptModel.load_from_registry(name)
    staging = PromptModel.load_from_registry(name, stage="staging")
    by_version = PromptModel.load_from_registry(name, version="2.0.0")

    assert (production.version, production.stage) == ("1.0.0", ModelStage.PRODUCTION)
    assert (staging.version, staging.template) == ("2.0.0", HOOK_V2)
    assert by_version.get_template_variables() == ["text", "cta"]
    assert production.render(text="this") == "Check this: this"


def test_a_cache_hit_makes_no_registry_call_until_the_ttl_passes(registry_uri, unique_name):
    name = unique_name()
    model, newer = PromptModel.register_many([hook(name), hook(name, "1.0.1", "Check: {text}")])
    model.promote_to_staging()
    registry = get_registry()
    registry.cache_ttl = 1.0
    PromptModel.load_from_registry(name, stage="staging")
    calls_before = registry.gateway.calls

    # Move staging behind the cache's back, with a plain client.
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    client.set_registered_model_alias(registered_model_name(name), "staging", newer.mlflow_version)
    cached = PromptModel.load_from_registry(name, stage="staging")

    assert cached.version == "1.0.0"
    assert registry.gateway.calls == calls_before
    time.sleep(1.1)
    assert PromptModel.load_from_registry(name, stage="staging").version == "1.0.1"
    assert registry.gateway.calls > calls_before


def test_loaded_models_are_independent_copies(unique_name):
    name = unique_name()
    hook(name).register().promote_to_staging()

    first = PromptModel.load_from_registry(name, stage="staging")
    first.metadata["author"] = "mallory"

    assert PromptModel.load_from_registry(name, stage="staging").metadata["author"] == "alice"


def test_it_says_when_a_stage_has_no_version(unique_name):
    name = unique_name()
    hook(name).register()

    with pytest.raises(NotFoundError, match="has no production version"):
        PromptModel.load_from_registry(name)


def test_a_batch_shares_one_run_and_writes_nothing_when_any_version_is_refused(unique_name):
    good, other = unique_name("a"), unique_name("b")
    bad_bump = [hook(good), hook(good, "1.0.1", HOOK_V2), hook(other)]

    with pytest.raises(BatchRegistrationError) as caught:
        PromptModel.register_many(bad_bump)

    assert "adds variable 'cta': needs 1.1.0 or later" in str(caught.value)
    with pytest.raises(NotFoundError):
        get_registry().versions(other)
    batch = PromptModel.register_many([hook(good), hook(good, "1.1.0", HOOK_V2), hook(other)])
    assert len({model.run_id for model in batch}) == 1


def test_transition_many_applies_each_move(unique_name):
    a, b = unique_name("a"), unique_name("b")
    PromptModel.register_many([hook(a), hook(b)])

    moved = PromptModel.transition_many([(a, "1.0.0", "staging"), (b, "1.0.0", "staging")])

    assert [m.stage for m in moved] == [ModelStage.STAGING, ModelStage.STAGING]


def test_it_refuses_a_name_that_maps_onto_a_model_it_did_not_create(registry_uri, unique_name):
    name = unique_name()
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    client.create_registered_model(registered_model_name(name))

    with pytest.raises(NameCollisionError, match="registry_ui did not create"):
        hook(name).register()


def test_it_refuses_a_name_that_differs_from_an_existing_one_only_in_case(unique_name):
    name = unique_name()
    hook(name).register()

    with pytest.raises(NameCollisionError, match="differs only in letter case"):
        hook(name.upper()).register()


def test_get_lineage_lists_every_version_oldest_first_with_its_stage(unique_name):
    name = unique_name()
    v1, _v2, v3 = PromptModel.register_many(
        [hook(name), hook(name, "1.0.1", "Check: {text}"), hook(name, "1.1.0", HOOK_V2)]
    )
    v1.promote_to_staging()

    lineage = v3.get_lineage()

    assert [(e["version"], e["stage"]) for e in lineage] == [
        ("1.0.0", "staging"),
        ("1.0.1", "dev"),
        ("1.1.0", "dev"),
    ]
    assert all(e["created_at"] is not None and e["author"] == "alice" for e in lineage)


def test_new_versions_are_registered_in_dev_only(unique_name):
    model = PromptModel(unique_name(), HOOK_V1, "1.0.0", stage=ModelStage.PRODUCTION)

    with pytest.raises(StageTransitionError, match="registered in dev"):
        model.register()


def test_it_validates_on_creation_and_says_where_the_template_is_wrong(unique_name):
    with pytest.raises(TemplateValidationError) as caught:
        PromptModel(unique_name(), "Hello {name", "1.0.0")

    assert caught.value.errors[0].line == 1
    assert caught.value.errors[0].column == 7


def test_a_name_taken_by_a_native_mlflow_prompt_is_refused_and_says_so(registry_uri, unique_name):
    import mlflow

    name = unique_name()
    mlflow.set_registry_uri(registry_uri)
    mlflow.genai.register_prompt(name=registered_model_name(name), template="Hi {{x}}")

    with pytest.raises(NameCollisionError, match="Prompt Registry"):
        hook(name).register()


def test_unstorable_characters_are_refused_before_anything_is_written(registry_uri, unique_name):
    name = unique_name()
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)

    with pytest.raises(TemplateValidationError, match=r"1:6: NUL character"):
        hook(name, template="Hello\x00 {name}")
    with pytest.raises(TemplateValidationError, match=r"U\+D83D"):
        hook(name, template="Hello {name} \ud83d")
    with pytest.raises(ValueError, match=r"metadata.author holds a NUL character"):
        hook(name, author="bo\x00b")

    assert client.search_registered_models(filter_string=f"name = '{name}'") == []
