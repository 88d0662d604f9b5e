"""A/B experiments on native prompts of MLflow's Prompt Registry (issue 18): defined on the
dashboard like a template's, published as a tag of the prompt, units assigned at runtime and
served the native version, outcomes and results on the pages and the API, metrics logged to
MLflow runs. Against a real MLflow (local SQLite store); tasks run in process."""

from __future__ import annotations

import uuid
from datetime import timedelta

import mlflow
import pytest

from registry_ui.core.policy import PolicyError
from registry_ui.web.experiments import definitions, mlflow_metrics
from registry_ui.web.experiments.definitions import VariantLine
from registry_ui.web.models import Experiment
from registry_ui.web.prompts.native import sync_native_prompts
from tests.support.mirror_rows import signed_in
from tests.web.experiments.test_experiments import START, ingest, outcomes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def prompt(sqlite_registry_uri):
    """A native prompt with production on version 1 (1.0.0) and version 2 (1.0.1), mirrored."""
    name = f"nx-{uuid.uuid4().hex[:8]}"
    mlflow.genai.register_prompt(name, "Hello {{ name }}!")
    mlflow.genai.register_prompt(name, "Hello {{ name }}, welcome!")
    mlflow.genai.set_prompt_alias(name, "production", 1)
    sync_native_prompts(name=name)
    return name


def define(name: str, key: str, variants=None):
    return definitions.create_experiment(
        actor="dave",
        template_name=name,
        key=key,
        title="A warmer greeting",
        variants=variants
        or [VariantLine("control", "1.0.0", 50), VariantLine("treatment", "v2", 50)],
        metric="engagement",
        kind="rate",
        min_samples=5,
        start_at=START,
        stop_at=START + timedelta(days=14),
    )


def test_an_experiment_on_a_native_prompt_is_published_and_served_at_runtime(
    prompt, django_capture_on_commit_callbacks, in_process_tasks
):
    from registry_ui.experiments import choose_variant
    from registry_ui.prompt_model import get_registry

    with django_capture_on_commit_callbacks(execute=True):
        experiment = define(prompt, "nx-greet")
    get_registry().invalidate()

    experiment.refresh_from_db()
    assert experiment.is_native and experiment.published_at is not None
    assert [(v.name, v.label) for v in experiment.variants.all()] == [
        ("control", "1.0.0"),
        ("treatment", "1.0.1"),  # "v2", MLflow's number, is kept as its semantic version
    ]
    named = [choose_variant("nx-greet", f"user-{i}", template=prompt) for i in range(100)]
    searched = [choose_variant("nx-greet", f"user-{i}") for i in range(100)]
    assert named == searched
    assert {a.version for a in named} == {"1.0.0", "1.0.1"}
    treated = next(a for a in named if a.variant == "treatment")
    assert treated.load().render(name="Al") == "Hello Al, welcome!"


def test_a_version_the_prompt_lacks_is_refused_with_those_it_has(prompt):
    with pytest.raises(PolicyError, match=r"has no version 9\.9\.9: it has 1\.0\.0, 1\.0\.1"):
        define(prompt, "nx-bad", [VariantLine("a", "1.0.0", 1), VariantLine("b", "9.9.9", 1)])
    with pytest.raises(PolicyError, match="no template or native prompt named 'nx-nothing'"):
        define("nx-nothing", "nx-none")


def test_outcomes_and_results_show_on_the_pages_and_the_api(prompt, client, dave, root):
    from registry_ui.web.api import tokens as api_tokens

    experiment = define(prompt, "nx-results")
    ingest(
        outcomes("control", 3, 10, key="nx-results")
        + outcomes("treatment", 6, 10, key="nx-results")
    )

    detail = signed_in(dave).get("/experiments/nx-results/").text
    listed = signed_in(dave).get(f"/experiments/?template={prompt}").text
    native_page = signed_in(dave).get(f"/native-prompts/{prompt}").text
    _, raw = api_tokens.token_create(dave, name="reader", scopes=["read"])
    api = client.get("/api/v1/experiments/nx-results", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert "Native prompt" in detail and f'href="/native-prompts/{prompt}"' in detail
    assert "treatment (1.0.1, weight 50)" in detail
    assert "nx-results" in listed and "native-badge" in listed
    assert 'href="/experiments/nx-results/"' in native_page
    assert f"/experiments/new?template={prompt}" in native_page
    body = api.json()
    assert api.status_code == 200, body
    assert (body["template"], body["native"]) == (prompt, True)
    assert {(v["name"], v["version"], v["n"]) for v in body["variants"]} == {
        ("control", "1.0.0", 10),
        ("treatment", "1.0.1", 10),
    }
    assert experiment.variants.count() == 2


def test_the_define_page_suggests_production_against_the_newest_version(prompt, dave):
    page = signed_in(dave).get(f"/experiments/new?template={prompt}").text

    assert "control 1.0.0 50\ntreatment 1.0.1 50" in page
    assert f'<option value="{prompt}">' in page


def test_aggregates_are_logged_to_mlflow_runs_tagged_with_the_prompt_and_version(prompt):
    from registry_ui.prompt_model import get_mlflow_client

    experiment = define(prompt, "nx-log")
    ingest(outcomes("control", 3, 10, key="nx-log") + outcomes("treatment", 4, 8, key="nx-log"))

    assert mlflow_metrics.log_metrics_to_mlflow(experiment.pk) == 2
    treatment = experiment.variants.get(name="treatment")
    run = get_mlflow_client().get_run(treatment.mlflow_run_id)
    assert run.data.tags["registry_ui.template_name"] == prompt
    assert run.data.tags["registry_ui.version"] == "1.0.1"
    assert run.data.metrics == {"engagement": 0.5, "engagement_count": 8.0}
    assert Experiment.objects.get(key="nx-log").is_native
