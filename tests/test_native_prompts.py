"""Chat templates and native prompts over a real MLflow: a local SQLite store and a server."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from registry_ui.core.errors import BatchRegistrationError, NotFoundError
from registry_ui.prompt_model import NativePromptModel, PromptModel, get_registry

pytestmark = pytest.mark.usefixtures("registry_uri")

CHAT = [
    {"role": "system", "content": "You write for {persona}."},
    {"role": "user", "content": "Write a hook about {topic}."},
]
SCHEMA = {"type": "object", "properties": {"hook": {"type": "string"}}, "required": ["hook"]}


def native_name(unique_name) -> str:
    return unique_name("n").replace("/", "-")


def test_a_chat_template_with_model_configuration_round_trips_through_mlflow(
    registry_uri, unique_name
):
    name = unique_name()
    model = PromptModel(
        name,
        CHAT,
        "1.0.0",
        metadata={"author": "alice"},
        model_config={"model_name": "gpt-4o", "temperature": 0.2},
        response_format=SCHEMA,
    ).register()
    loaded = PromptModel.load_from_registry(name, version="1.0.0")
    assert loaded == model
    assert loaded.messages == CHAT
    assert loaded.model_config == {"model_name": "gpt-4o", "temperature": 0.2}
    assert loaded.response_format == SCHEMA
    assert loaded.render_messages(persona="founders", topic="AI") == [
        {"role": "system", "content": "You write for founders."},
        {"role": "user", "content": "Write a hook about AI."},
    ]
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    [version] = client.search_model_versions(f"name = '{name.replace('/', '.')}'")
    assert set(version.tags) >= {
        "registry_ui.messages",
        "registry_ui.model_config",
        "registry_ui.response_format",
    }


def test_a_text_template_writes_no_new_tags_and_keeps_its_hash(registry_uri, unique_name):
    name = unique_name()
    model = PromptModel(name, "Hi {name}", "1.0.0", metadata={"author": "alice"}).register()
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    [version] = client.search_model_versions(f"name = '{name.replace('/', '.')}'")
    assert not any(
        tag.startswith(("registry_ui.messages", "registry_ui.model_")) for tag in version.tags
    )
    from registry_ui.core.records import content_hash

    assert version.tags["registry_ui.content_sha256"] == content_hash(
        "Hi {name}", {"author": "alice"}
    )
    assert PromptModel.load_from_registry(name, version="1.0.0") == model


def test_a_changed_response_format_needs_a_minor_and_a_removed_field_a_major(unique_name):
    name = unique_name()
    PromptModel(name, CHAT, "1.0.0", metadata={"author": "a"}, response_format=SCHEMA).register()
    narrower = {"type": "object", "properties": {"other": {"type": "string"}}}
    with pytest.raises(
        BatchRegistrationError, match="removes field 'hook' from the response format"
    ):
        PromptModel(
            name, CHAT, "1.1.0", metadata={"author": "a"}, response_format=narrower
        ).register()
    wider = {**SCHEMA, "properties": {**SCHEMA["properties"], "tags": {"type": "array"}}}
    with pytest.raises(BatchRegistrationError, match=r"changes the response format: needs 1\.1\.0"):
        PromptModel(name, CHAT, "1.0.1", metadata={"author": "a"}, response_format=wider).register()
    PromptModel(name, CHAT, "1.1.0", metadata={"author": "a"}, response_format=wider).register()
    PromptModel(
        name,
        CHAT,
        "1.1.1",
        metadata={"author": "a"},
        response_format=wider,
        model_config={"temperature": 0.9},
    ).register()
    assert [v["version"] for v in PromptModel(name, "x", "9.0.0").get_lineage()] == [
        "1.0.0",
        "1.1.0",
        "1.1.1",
    ]


def test_native_prompts_load_by_alias_semver_number_and_uri_and_render_as_mlflow(unique_name):
    name = native_name(unique_name)
    mlflow.genai.register_prompt(name, "Hello {{ name }}, you are {{age}}", commit_message="one")
    mlflow.genai.register_prompt(name, "Hello {{ name }}!", commit_message="two")
    mlflow.genai.register_prompt(
        name,
        [
            {"role": "system", "content": "Be {{ tone }}"},
            {"role": "user", "content": "Hi {{name}}"},
        ],
        model_config={"model_name": "gpt-4o", "temperature": 0.1},
    )
    mlflow.genai.set_prompt_alias(name, "production", 1)
    mlflow.genai.set_prompt_alias(name, "staging", 3)

    production = PromptModel.load_from_registry(name)
    assert isinstance(production, NativePromptModel)
    assert (production.version, production.mlflow_version) == ("1.0.0", "1")
    expected = mlflow.genai.load_prompt(f"prompts:/{name}@production").format(name="Ann", age=3)
    assert production.render(name="Ann", age=3) == expected == "Hello Ann, you are 3"

    by_semver = PromptModel.load_from_registry(name, version="2.0.0")  # removed {{age}}
    assert by_semver.mlflow_version == "2"
    chat = PromptModel.load_from_registry(name, stage="staging")
    assert chat.version == "2.1.0"  # adds {{tone}} (minor) and a model configuration
    assert chat.render(tone="brief", name="Bo") == mlflow.genai.load_prompt(
        f"prompts:/{name}/3"
    ).format(tone="brief", name="Bo")
    assert chat.model_config == {"model_name": "gpt-4o", "temperature": 0.1}
    assert PromptModel.load_from_registry(f"prompts:/{name}/2").version == "2.0.0"
    assert PromptModel.load_from_registry(f"prompts:/{name}@staging").mlflow_version == "3"
    with pytest.raises(NotFoundError, match=r"has no version 9\.0\.0"):
        PromptModel.load_from_registry(name, version="9.0.0")
    with pytest.raises(TypeError, match="moves through a request"):
        production.promote_to_production()


def test_a_jinja_native_prompt_renders_through_mlflow(unique_name):
    name = native_name(unique_name)
    mlflow.genai.register_prompt(name, "Hi{% if name %} {{ name }}{% endif %}!")
    mlflow.genai.set_prompt_alias(name, "production", 1)
    model = PromptModel.load_from_registry(name)
    assert (
        model.render(name="Zoe")
        == "Hi Zoe!"
        == mlflow.genai.load_prompt(f"prompts:/{name}@production").format(name="Zoe")
    )
    assert model.render() == "Hi!"


def test_a_native_prompt_is_served_from_the_cache_without_a_call(unique_name):
    name = native_name(unique_name)
    mlflow.genai.register_prompt(name, "Hello {{ name }}")
    mlflow.genai.set_prompt_alias(name, "production", 1)
    registry = get_registry()
    PromptModel.load_from_registry(name)
    calls = registry.gateway.calls
    for _ in range(5):
        assert PromptModel.load_from_registry(name).render(name="x") == "Hello x"
    assert registry.gateway.calls == calls
    registry.invalidate(name)
    PromptModel.load_from_registry(name)
    assert registry.gateway.calls == calls + 2


def test_an_unknown_name_is_still_not_found(unique_name):
    with pytest.raises(NotFoundError):
        PromptModel.load_from_registry(native_name(unique_name))
