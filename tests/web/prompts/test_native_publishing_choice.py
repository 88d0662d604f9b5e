"""Which templates are published as native MLflow prompts (issue 18): the setting (none, all,
prefix:<P>) and each template's metadata `publish_native`; the pages say why a chosen
template cannot be published; a move the workers carry out is published at once. Against a
real MLflow (local SQLite store); tasks run in process."""

from __future__ import annotations

import uuid

import mlflow
import pytest
from django.core.exceptions import ImproperlyConfigured

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.prompts.mirror import sync_registry
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import signed_in
from tests.web.reviews.test_approvals import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]
META = {"author": "a"}


@pytest.fixture
def prefix():
    return f"pub{uuid.uuid4().hex[:8]}/"


def published(name: str, alias: str = "production"):
    target = name.replace("/", ".") + "._prompt"
    return mlflow.genai.load_prompt(f"prompts:/{target}@{alias}", allow_missing=True)


def staged(name: str, text: str, metadata=META) -> None:
    PromptModel(name, text, "1.0.0", metadata=metadata).register().promote_to_staging()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("none", True), ("all", True), ("prefix:persona/", True), ("prefix:", False), ("some", False)],
)
def test_the_setting_is_checked_at_start_up(monkeypatch, value, accepted):
    from registry_ui import settings as module

    monkeypatch.setenv("REGISTRY_UI_NATIVE_PUBLISH", value)
    if accepted:
        assert module._env("REGISTRY_UI_NATIVE_PUBLISH", module._native_publish) == value
    else:
        with pytest.raises(ImproperlyConfigured, match="use none, all or prefix:"):
            module._env("REGISTRY_UI_NATIVE_PUBLISH", module._native_publish)


def test_a_prefix_chooses_templates_and_metadata_chooses_for_one(settings, prefix):
    settings.NATIVE_PUBLISH = f"prefix:{prefix}in/"
    chosen, other = f"{prefix}in/hook", f"{prefix}out/hook"
    asked, refused = f"{prefix}out/asks", f"{prefix}in/declines"
    staged(chosen, "Hi {who}")
    staged(other, "Hi {who}")
    staged(asked, "Hi {who}", {**META, "publish_native": True})
    staged(refused, "Hi {who}", {**META, "publish_native": False})

    sync_registry()

    assert published(chosen, "staging").format(who="Al") == "Hi Al"
    assert published(asked, "staging").format(who="Al") == "Hi Al"
    assert published(other, "staging") is None
    assert published(refused, "staging") is None
    assert sync_registry()["native_published"] == 0  # in step: nothing written again


def test_a_template_the_format_cannot_express_is_not_published_and_its_pages_say_why(
    settings, prefix, reader
):
    settings.NATIVE_PUBLISH = "all"
    name = f"{prefix}priced"
    staged(name, "Costs {price:.2f} for {who}")

    counts = sync_registry()
    template_page = signed_in(reader).get(f"/templates/{name}").text
    version_page = signed_in(reader).get(f"/templates/{name}/-/versions/1.0.0").text

    assert counts["native_unpublishable"] >= 1 and published(name, "staging") is None
    assert "1.0.0 (staging) is not published</strong>" in template_page
    assert "line 1, column 7: {price:.2f} has a format spec" in template_page
    assert "This version cannot be published as a native prompt" in version_page
    assert "has a format spec" in version_page


def test_a_chosen_template_shows_its_native_name(settings, prefix, reader):
    settings.NATIVE_PUBLISH = "none"
    name = f"{prefix}plain"
    staged(name, "Hi {who}", {**META, "publish_native": True})
    sync_registry()

    page = signed_in(reader).get(f"/templates/{name}").text
    untouched = f"{prefix}quiet"
    staged(untouched, "Hi {who}")
    sync(untouched)

    target = name.replace("/", ".") + "._prompt"
    assert f"Every version is also published as <code>{target}</code> (1 of 1 so far)" in page
    assert '<span class="stage">staging</span> on version 1' in page
    assert "native MLflow prompt" not in signed_in(reader).get(f"/templates/{untouched}").text


def test_a_move_the_workers_carry_out_is_published_without_waiting_for_a_sync(
    settings, prefix, erin, bob
):
    settings.NATIVE_PUBLISH = "all"
    name = f"{prefix}moved"
    PromptModel(name, "Hi {who}", "1.0.0", metadata=META).register()
    sync(name)
    calls = get_registry().gateway.calls

    request = reviews.file_request(
        erin, template_name=name, version="1.0.0", target="staging", justification="ready"
    )
    reviews.approve(bob, request.pk, comment="fine")

    request.refresh_from_db()
    assert request.status == "done"
    assert published(name, "staging").format(who="Al") == "Hi Al"
    assert get_registry().gateway.calls > calls


def test_every_version_is_published_and_one_the_format_cannot_express_is_left_out(
    settings, prefix, reader
):
    settings.NATIVE_PUBLISH = "all"
    name = f"{prefix}every"
    PromptModel(name, "Hi {who}", "1.0.0", metadata=META).register().promote_to_staging()
    PromptModel(name, "Hi {who}: {price:.2f}", "2.0.0", metadata=META).register()
    PromptModel(name, "Hi {who}: {price}", "2.0.1", metadata=META).register()

    counts = sync_registry()
    again = sync_registry()
    page = signed_in(reader).get(f"/templates/{name}").text

    target = name.replace("/", ".") + "._prompt"
    versions = {
        v.tags["registry_ui.semver"]: v
        for v in (mlflow.genai.load_prompt(f"prompts:/{target}/{n}") for n in (1, 2))
    }
    assert counts["native_published"] >= 1
    assert set(versions) == {"1.0.0", "2.0.1"}  # the dev version too; 2.0.0 left out
    assert versions["2.0.1"].format(who="Al", price="3") == "Hi Al: 3"
    assert mlflow.genai.load_prompt(f"prompts:/{target}/3", allow_missing=True) is None
    assert published(name, "staging").format(who="Al") == "Hi Al"
    assert again["native_published"] == 0  # in step: the left-out version is not retried
    assert "(2 of 3 so far)" in page
    assert "Left out" in page and "{price:.2f} has a format spec" in page


def test_a_new_version_of_a_chosen_template_is_published_when_it_is_mirrored(
    settings, prefix, reader
):
    settings.NATIVE_PUBLISH = "all"
    name = f"{prefix}fresh"
    staged(name, "Hi {who}")
    sync_registry()
    PromptModel(name, "Hi {who}, welcome", "1.1.0", metadata=META).register()
    calls = get_registry().gateway.calls

    sync(name)  # the mirror sees 1.1.0 (as after a worker's registration or a webhook)

    target = name.replace("/", ".") + "._prompt"
    newest = mlflow.genai.load_prompt(f"prompts:/{target}/2")
    assert newest.tags["registry_ui.semver"] == "1.1.0"
    assert newest.format(who="Al") == "Hi Al, welcome"
    assert published(name, "staging").format(who="Al") == "Hi Al"  # the alias did not move
    assert get_registry().gateway.calls > calls
    version_page = signed_in(reader).get(f"/templates/{name}/-/versions/1.1.0").text
    assert (
        f"also published as a version of <code>{target}</code> (MLflow version 2)" in version_page
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("none", True),
        ("all", True),
        ("prefix:support/", True),
        ("tag:team", True),
        ("tag:team=support", True),
        ("prefix:", False),
        ("tag:", False),
        ("tag:=support", False),
        ("team=support", False),
    ],
)
def test_the_governed_prompts_setting_is_checked_at_start_up(monkeypatch, value, accepted):
    from registry_ui import settings as module

    monkeypatch.setenv("REGISTRY_UI_NATIVE_PROMPTS_GOVERNED", value)
    if accepted:
        assert module._env("REGISTRY_UI_NATIVE_PROMPTS_GOVERNED", module._native_governed) == value
    else:
        with pytest.raises(ImproperlyConfigured, match=r"use none, all, prefix:<name prefix>"):
            module._env("REGISTRY_UI_NATIVE_PROMPTS_GOVERNED", module._native_governed)
