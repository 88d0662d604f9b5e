"""Test cases of native prompts (issue 18): written as JSON in the version's (or the prompt's)
tag registry_ui.test_cases with MLflow's own API, run with MLflow's formatting when the
mirror sees them, shown on the prompt's page, run again on demand (audited), and a gate on
governed alias moves. Against a real MLflow (local SQLite store)."""

from __future__ import annotations

import json
import uuid

import mlflow
import pytest
from django.core.management import call_command
from mlflow.tracking import MlflowClient

from registry_ui.web.checks import native as native_checks
from registry_ui.web.models import AuditEvent, NativeAliasRequest, NativeCheckRun, NativePrompt
from registry_ui.web.prompts.mirror import sync_registry
from registry_ui.web.prompts.native import (
    AliasRequestError,
    approve_alias_request,
    file_alias_request,
    sync_native_prompts,
)
from tests.support.mirror_rows import signed_in

pytestmark = pytest.mark.django_db(transaction=True)
TAG = "registry_ui.test_cases"


@pytest.fixture
def prefix(sqlite_registry_uri):
    return f"nc-{uuid.uuid4().hex[:8]}-"


def cases(*items) -> str:
    return json.dumps(list(items))


GREETING = {"name": "greets", "values": {"name": "Ada"}, "contains": "Hello Ada"}


def latest(name: str, number: int) -> NativeCheckRun | None:
    version = NativePrompt.objects.get(name=name).versions.get(number=number)
    return native_checks.latest_run(version)


def test_a_version_tag_holds_cases_run_with_mlflow_formatting_when_mirrored(prefix, reader):
    name = prefix + "greet"
    mlflow.genai.register_prompt(
        name,
        "Hello {{ name }}!",
        tags={TAG: cases(GREETING, {"name": "no values", "values": {}, "contains": "x"})},
    )

    counts = sync_native_prompts(name=name)

    run = latest(name, 1)
    assert counts["native_checks_run"] == 1
    assert run.trigger == "mirror" and not run.passed
    greets, missing = native_checks.results_of(run)
    assert greets.passed and greets.rendered == "Hello Ada!"
    assert not missing.passed and missing.rendered is None
    assert "name" in missing.failures[0].message  # the value MLflow needs is missing
    page = signed_in(reader).get(f"/native-prompts/{name}").text
    assert "Test cases of 1.0.0" in page and "Test cases fail" in page
    assert "From the version tag <code>registry_ui.test_cases</code>" in page
    assert "Hello Ada!" in page
    # Seen again with the same cases: not run again.
    assert sync_native_prompts(name=name)["native_checks_run"] == 0


def test_chat_messages_and_the_response_format_are_checked(prefix):
    name = prefix + "chat"
    mlflow.genai.register_prompt(
        name,
        [
            {"role": "system", "content": "Be {{ tone }}"},
            {"role": "user", "content": "Hi {{name}}"},
        ],
        response_format={"type": "object", "properties": {"reply": {"type": "string"}}},
        tags={
            TAG: cases(
                {
                    "name": "roles",
                    "values": {"tone": "brief", "name": "Ada"},
                    "messages": [
                        {"role": "system", "expected": "Be brief"},
                        {"message": 2, "contains": "Hi Ada"},
                    ],
                    "sample_output": '{"reply": "hi"}',
                },
                {
                    "name": "bad answer",
                    "values": {"tone": "brief", "name": "Ada"},
                    "sample_output": '{"reply": 3}',
                },
            )
        },
    )

    sync_native_prompts(name=name)

    roles, bad = native_checks.results_of(latest(name, 1))
    assert roles.passed, roles.failures
    assert not bad.passed
    assert "reply" in str(bad.failures[0])


def test_the_prompt_tag_serves_every_version_and_a_change_in_mlflow_is_run_again(prefix):
    name = prefix + "shared"
    mlflow.genai.register_prompt(name, "Hello {{ name }}!")
    mlflow.genai.register_prompt(name, "Bye {{ name }}!")
    client = MlflowClient()
    client.set_prompt_tag(name, TAG, cases(GREETING))

    sync_native_prompts(name=name)
    first, second = latest(name, 1), latest(name, 2)

    assert first.passed and not second.passed
    # The version's own cases win over the prompt's; changed in MLflow, they run again.
    client.set_prompt_version_tag(
        name, 2, TAG, cases({"name": "bye", "values": {"name": "Ada"}, "expected": "Bye Ada!"})
    )
    assert sync_native_prompts(name=name)["native_checks_run"] == 1
    again = latest(name, 2)
    assert again.passed and again.pk != second.pk
    assert latest(name, 1).pk == first.pk


def test_unreadable_cases_say_which_tag_and_where(prefix):
    name = prefix + "broken"
    mlflow.genai.register_prompt(name, "Hi {{ name }}", tags={TAG: '[{"values": {"name": "A"}'})
    mlflow.genai.register_prompt(
        name, "Hi {{ name }}", tags={TAG: cases({"name": "typo", "valuez": {}})}
    )

    sync_native_prompts(name=name)

    [broken] = native_checks.results_of(latest(name, 1))
    assert not broken.passed
    assert "the version tag registry_ui.test_cases is not JSON, at line 1, column" in str(
        broken.failures[0]
    )
    [unknown] = native_checks.results_of(latest(name, 2))
    assert "unknown key 'valuez' (did you mean 'values'?)" in str(unknown.failures[0])


def test_running_again_on_demand_is_audited_and_needs_a_role(prefix, client, alice, reader):
    name = prefix + "again"
    mlflow.genai.register_prompt(name, "Hello {{ name }}!", tags={TAG: cases(GREETING)})
    sync_native_prompts(name=name)

    client.force_login(reader)
    assert client.post(f"/native-prompts/{name}/checks", {"version": "1"}).status_code == 403
    client.force_login(alice)
    response = client.post(f"/native-prompts/{name}/checks", {"version": "1"})

    assert response.status_code == 303
    assert latest(name, 1).trigger == "on_demand"
    event = AuditEvent.objects.get(object_id=name, action="native_prompt.checks_run")
    assert (event.actor, event.after["passed"], event.after["cases"]) == ("alice", True, 1)
    assert "test cases run again" in signed_in(alice).get(f"/native-prompts/{name}").text
    assert client.post(f"/native-prompts/{name}/checks", {"version": "7"}).status_code == 400


def test_a_failing_version_is_refused_for_a_governed_alias_unless_accepted_with_a_reason(
    prefix, rita, bob, carol
):
    name = prefix + "gate"
    mlflow.genai.register_prompt(name, "Hello {{ name }}!", tags={TAG: cases(GREETING)})
    mlflow.genai.register_prompt(name, "Hello {{ name }}?", tags={TAG: cases(GREETING)})
    mlflow.genai.register_prompt(name, "Bye {{ name }}.", tags={TAG: cases(GREETING)})
    mlflow.genai.set_prompt_alias(name, "production", 1)
    call_command("import_prompts", prefix=prefix)

    with pytest.raises(AliasRequestError, match=r"1\.0\.2's test cases do not pass"):
        file_alias_request(rita, prompt=name, version="3", alias="production")
    request = file_alias_request(
        rita, prompt=name, version="3", alias="production", checks_override="wording on purpose"
    )
    approve_alias_request(bob, request.pk)
    approve_alias_request(carol, request.pk)

    request.refresh_from_db()
    assert request.state == "done"
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 3
    filed = AuditEvent.objects.get(object_id=name, action="native_alias.requested")
    assert filed.after["checks_override"] == "wording on purpose"


def test_a_version_whose_cases_fail_by_the_move_is_not_moved(prefix, rita, bob, carol):
    name = prefix + "late"
    mlflow.genai.register_prompt(name, "Hello {{ name }}!")
    mlflow.genai.register_prompt(name, "Hello {{ name }}?", tags={TAG: cases(GREETING)})
    mlflow.genai.set_prompt_alias(name, "production", 1)
    call_command("import_prompts", prefix=prefix)
    request = file_alias_request(rita, prompt=name, version="2", alias="production")
    approve_alias_request(bob, request.pk)

    # Cases changed in MLflow after the request: the move runs them once more.
    MlflowClient().set_prompt_version_tag(
        name, 2, TAG, cases({"name": "strict", "values": {"name": "A"}, "expected": "Hello A!"})
    )
    sync_registry()
    approve_alias_request(carol, request.pk)

    request.refresh_from_db()
    assert request.state == NativeAliasRequest.State.FAILED
    assert "test cases no longer pass (1 of 1 test case(s) fail: strict)" in request.result
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 1
    assert latest(name, 2).trigger == "promotion"
