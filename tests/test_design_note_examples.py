"""The design note's usage examples, run as written (with the new import path)."""

from __future__ import annotations

import mlflow
import pytest

from registry_ui.prompt_model import PromptModel, get_mlflow_client

pytestmark = pytest.mark.usefixtures("registry_uri")


def test_basic_usage(unique_name):
    name = unique_name("viral-hook-generator")
    # 1. Create a prompt model
    model = PromptModel(
        name=name,
        template="🔥 {hook_text} - {cta} #trending #{hashtag}",
        version="1.0.0",
        metadata={"author": "content-team", "engagement_target": 0.06, "tested_on": "threads"},
    )

    # 2. Validate and register
    model.validate()
    model.register()

    # 3. Render template
    content = model.render(
        hook_text="AI just changed everything", cta="See how in comments", hashtag="AIRevolution"
    )
    assert content == "🔥 AI just changed everything - See how in comments #trending #AIRevolution"

    # 4. Promote through stages
    model.promote_to_staging()
    model.promote_to_production()
    assert PromptModel.load_from_registry(name).version == "1.0.0"


def test_advanced_usage(unique_name):
    name = unique_name("hook")
    v1 = PromptModel(name=name, template="Check this: {text}", version="1.0.0")
    v2 = PromptModel(name=name, template="🚀 Check this: {text} - {cta}", version="2.0.0")

    comparison = v1.compare_with(v2)
    assert comparison["template_diff"]["variables_added"] == ["cta"]

    v1.register()
    v2.register()
    lineage = v2.get_lineage()
    assert [version["version"] for version in lineage] == ["1.0.0", "2.0.0"]
    for version in lineage:
        assert f"Version {version['version']} created at {version['created_at']}"

    variables = v2.get_template_variables()
    assert variables == ["text", "cta"]


def test_persona_runtime_integration(unique_name):
    template_name = unique_name("runtime").replace("/", "-")  # a flat name is its MLflow name
    model = PromptModel(template_name, "Hi {name}", "1.0.0")
    model.register()
    model.promote_to_staging()
    model.promote_to_production()

    def load_prompt_template(template_name: str, stage: str = "production"):
        client = get_mlflow_client()
        versions = client.get_latest_versions(template_name, stages=[stage])
        if versions:
            model = PromptModel.load_from_registry(name=template_name, version=versions[0].version)
            return model.template

    assert load_prompt_template(template_name) == "Hi {name}"


def test_ab_testing(unique_name):
    name = unique_name("hook-generator")
    production = PromptModel(name, "{hook} now", "1.0.0")
    production.register()
    production.promote_to_staging()
    production.promote_to_production()
    PromptModel(name, "{hook}, right now", "1.0.1").register().promote_to_staging()

    def generate_with_template(model, persona_id):
        return model.render(hook=f"Hello {persona_id}")

    def measure_engagement(content):
        return len(content) / 100

    model_a = PromptModel.load_from_registry(name, stage="production")
    model_b = PromptModel.load_from_registry(name, stage="staging")
    content_a = generate_with_template(model_a, "p1")
    content_b = generate_with_template(model_b, "p1")
    mlflow.log_metric("engagement_rate_a", measure_engagement(content_a))
    mlflow.log_metric("engagement_rate_b", measure_engagement(content_b))
    mlflow.end_run()

    assert (content_a, content_b) == ("Hello p1 now", "Hello p1, right now")
