"""Publishing registry_ui templates as native prompts, checked with MLflow's own load_prompt."""

from __future__ import annotations

import mlflow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_ui.gateway import published_name
from registry_ui.prompt_model import PromptModel
from registry_ui.registry import NotPublishableError

pytestmark = pytest.mark.usefixtures("registry_uri")

TEXT = 'Hook for {persona}: {topic} {{"json": true}} - {cta}'
# Values MLflow and str.format render alike: MLflow fills a '{{ other }}' inside a value in
# with a later value (docs/mlflow-contract.md, "Formatting"), str.format never does.
VALUES = st.text(max_size=20).filter(lambda value: "{{" not in value)


def test_a_published_text_template_renders_as_load_prompt_for_generated_values(unique_name):
    model = PromptModel(unique_name(), TEXT, "1.0.0", metadata={"author": "a"}).register()
    uri = model.publish_native()
    assert uri == f"prompts:/{published_name(model.name)}/1"
    native = mlflow.genai.load_prompt(uri)
    assert native.template == 'Hook for {{persona}}: {{topic}} {"json": true} - {{cta}}'

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(VALUES, VALUES, VALUES)
    def same(persona, topic, cta):
        values = {"persona": persona, "topic": topic, "cta": cta}
        assert native.format(**values) == model.render(**values)

    same()


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.sampled_from(["{a}", "{b}", " x ", "{{", "}}", "\\", "\n"]), min_size=1, max_size=6
    ),
    VALUES,
    VALUES,
)
def test_generated_templates_publish_and_render_alike(unique_name, pieces, a, b):
    text = "".join(pieces)
    try:
        model = PromptModel(unique_name(), text, "1.0.0", metadata={"author": "a"})
    except ValueError:
        return
    model.register()
    try:
        uri = model.publish_native(aliases=False)
    except NotPublishableError:
        return
    values = {k: v for k, v in {"a": a, "b": b}.items() if k in model.get_template_variables()}
    assert mlflow.genai.load_prompt(uri).format(**values) == model.render(**values)


def test_a_template_with_a_format_spec_is_refused_with_the_reason(unique_name):
    model = PromptModel(unique_name(), "Price: {price:.2f}", "1.0.0", metadata={"author": "a"})
    model.register()
    with pytest.raises(NotPublishableError) as refused:
        model.publish_native()
    assert refused.value.reasons == [
        "line 1, column 8: {price:.2f} has a format spec ('.2f'); MLflow's {{x}} inserts the "
        "value as text, with no formatting"
    ]
    assert (
        mlflow.genai.load_prompt(f"prompts:/{published_name(model.name)}/1", allow_missing=True)
        is None
    )


def test_publishing_twice_is_a_no_op_and_aliases_follow_the_stages(unique_name):
    name = unique_name()
    v1 = PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": "a"}).register()
    v2 = PromptModel(name, "Hello {who}", "1.0.1", metadata={"author": "a"}).register()
    v1.promote_to_staging()
    v1.promote_to_production()
    assert v1.publish_native() == v1.publish_native()
    target = published_name(name)
    assert mlflow.genai.load_prompt(f"prompts:/{target}@production").format(who="Al") == "Hi Al"

    v2.promote_to_staging()
    v2.promote_to_production()
    v2.publish_native()
    production = mlflow.genai.load_prompt(f"prompts:/{target}@production")
    assert production.format(who="Al") == "Hello Al"
    assert production.tags["registry_ui.semver"] == "1.0.1"
    assert [v.version for v in mlflow.MlflowClient().search_prompt_versions(target)] == [2, 1]


def test_a_chat_template_with_model_configuration_is_published_as_a_chat_prompt(unique_name):
    model = PromptModel(
        unique_name(),
        [{"role": "system", "content": "Be {tone}"}, {"role": "user", "content": "Hi {name}"}],
        "1.0.0",
        metadata={"author": "a"},
        model_config={"model_name": "gpt-4o", "temperature": 0.2},
        response_format={"type": "object", "properties": {"reply": {"type": "string"}}},
    ).register()
    native = mlflow.genai.load_prompt(model.publish_native(aliases=False))
    assert native.format(tone="brief", name="Bo") == model.render_messages(tone="brief", name="Bo")
    assert native.model_config == {"model_name": "gpt-4o", "temperature": 0.2}
    assert native.response_format == {"type": "object", "properties": {"reply": {"type": "string"}}}
