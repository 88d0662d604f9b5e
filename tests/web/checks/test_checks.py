"""Checks in the dashboard: the metadata policy at registration, test cases run and stored
on registration, on demand and by the worker before a promotion, and the gate with its
audited override. Against a real MLflow (SQLite store); tasks run in-process."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from registry_ui.core.errors import BatchRegistrationError
from registry_ui.core.messages import messages_text, normalize_extra
from registry_ui.core.policy import PolicyError
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.registry import NewVersion
from registry_ui.web.checks import services as checks
from registry_ui.web.models import Approval, AuditEvent, CheckRun, PromotionRequest, TemplateVersion
from registry_ui.web.operations import queue
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]

HOOK = "🔥 {hook_text} - {cta} #trending #{hashtag}"
NO_HASHTAG = "🔥 {hook_text} - {cta}"
CASES = [
    {
        "name": "fits a Threads post",
        "values": {"hook_text": "AI changed it", "cta": "See how", "hashtag": "AI"},
        "max_length": 500,
    },
    {
        "name": "keeps the hashtag",
        "values": {"hook_text": "AI changed it", "cta": "See how", "hashtag": "AI"},
        "contains": {"regex": "#AI\\b"},
    },
]
METADATA = {
    "author": "alice",
    "purpose": "Opening hook",
    "tested_on": "threads",
    "performance_metrics": {"engagement_rate": 0.06},
}


@pytest.fixture
def users(erin, bob, carol, dave):
    """From the shared cast (tests/web/conftest.py): erin files requests, bob and carol
    review, dave analyses."""
    return {user.username: user for user in (erin, bob, carol, dave)}


def register(name, *versions, cases=CASES):
    """Register (version, text) pairs as one batch through the workers' path."""
    batch = queue.batch_register(
        versions=[
            NewVersion(name, version, text, {**METADATA, "test_cases": cases})
            for version, text in versions
        ],
        actor="alice",
    )
    batch.refresh_from_db()
    assert batch.status == "succeeded", list(batch.operations.values_list("last_error"))
    return batch


def row(name, version) -> TemplateVersion:
    return TemplateVersion.objects.get(template__name=name, version=version)


def mlflow_stage(name, version):
    return next(
        r.stage.value for r in get_registry().gateway.list_versions(name) if r.version == version
    )


def sync(name):
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")


# -- the metadata policy at registration -------------------------------------------------------


def test_prompt_model_refuses_a_version_missing_required_metadata_listing_every_problem(
    default_metadata_policy, unique_name
):
    name = unique_name()
    model = PromptModel(name, HOOK, "1.0.0", metadata={"author": "alice", "tested_on": 3})

    with pytest.raises(BatchRegistrationError) as raised:
        model.register()

    assert raised.value.errors == [
        f"{name} 1.0.0: metadata.purpose is missing: the metadata policy requires text here "
        "(what the template does, e.g. purpose: Opening hook for entrepreneur posts)",
        f"{name} 1.0.0: metadata.tested_on must be text or a list of texts (the platforms it "
        "was tested on, e.g. tested_on: threads); found the number 3",
        f"{name} 1.0.0: metadata.performance_metrics is missing: the metadata policy requires a "
        "mapping of metric names to numbers here (its expected metrics, e.g. "
        "performance_metrics: {engagement_rate: 0.06})",
    ]
    assert str(raised.value).startswith("3 problem(s), nothing was registered:\n- ")
    assert get_registry().gateway.list_versions(name) == []


def test_the_dashboards_registration_refuses_it_too_before_filing_anything(
    default_metadata_policy, unique_name
):
    name = unique_name()

    with pytest.raises(BatchRegistrationError, match=r"metadata\.purpose is missing"):
        queue.batch_register(
            versions=[NewVersion(name, "1.0.0", HOOK, {"author": "alice"})], actor="alice"
        )

    assert not TemplateVersion.objects.filter(template__name=name).exists()


def test_versions_registered_before_the_policy_are_flagged_not_broken(
    unique_name, settings, monkeypatch
):
    name = unique_name()
    PromptModel(name, HOOK, "1.0.0", metadata={"author": "alice"}).register()
    sync(name)
    monkeypatch.delenv("REGISTRY_UI_REQUIRED_METADATA")  # the default policy from now on
    settings.REQUIRED_METADATA = get_registry().metadata_policy()

    loaded = PromptModel.load_from_registry(name, version="1.0.0")
    again = PromptModel(name, HOOK, "1.0.0", metadata={"author": "alice"}).register()

    assert loaded.render(hook_text="a", cta="b", hashtag="c") == "🔥 a - b #trending #c"
    assert again.mlflow_version == loaded.mlflow_version  # found, not refused
    assert [p.split(" ", 1)[0] for p in checks.metadata_problems(row(name, "1.0.0"))] == [
        "metadata.purpose",
        "metadata.tested_on",
        "metadata.performance_metrics",
    ]


def test_a_bad_regular_expression_is_refused_at_registration_with_its_position(unique_name):
    name = unique_name()
    cases = [{"name": "hashtags", "contains": {"regex": "#(\\w+"}}]

    with pytest.raises(BatchRegistrationError) as raised:
        PromptModel(name, HOOK, "1.0.0", metadata={"test_cases": cases}).register()

    assert raised.value.errors == [
        f"{name} 1.0.0: test_cases: test case 'hashtags': contains: regular expression "
        "'#(\\w+' cannot be used, at position 1: a '(' is never closed"
    ]


def test_register_templates_reports_policy_problems_in_the_file_and_registers_nothing(
    default_metadata_policy, tmp_path, unique_name, capsys
):
    name = unique_name()
    (tmp_path / "a.yaml").write_text(
        f"name: {name}\nversion: 1.0.0\ntemplate: Hi {{who}}\nmetadata:\n  author: alice\n"
    )

    with pytest.raises(CommandError, match="3 problem"):
        call_command("register_templates", str(tmp_path))

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in lines] == [
        "metadata.purpose",
        "metadata.tested_on",
        "metadata.performance_metrics",
    ]
    assert all(line.startswith(f"{tmp_path / 'a.yaml'}:4:1: ") for line in lines)
    assert get_registry().gateway.list_versions(name) == []


def test_register_templates_registers_a_files_tests_with_the_version(tmp_path, unique_name, alice):
    name = unique_name()
    (tmp_path / "a.yaml").write_text(
        f"name: {name}\nversion: 1.0.0\ntemplate: Hi {{who}}\n"
        "tests:\n  - name: greets\n    values: {who: Ada}\n    expected: Hi Ada\n"
    )

    call_command("register_templates", str(tmp_path), "--user", "alice")

    [record] = get_registry().gateway.list_versions(name)
    assert record.metadata == {
        "test_cases": [{"name": "greets", "values": {"who": "Ada"}, "expected": "Hi Ada"}]
    }
    run = CheckRun.objects.get(version=row(name, "1.0.0"))
    assert (run.trigger, run.passed, run.results[0]["rendered"]) == ("registration", True, "Hi Ada")


# -- results stored on registration ------------------------------------------------------------


def test_registration_stores_each_cases_result_with_the_version(unique_name):
    name = unique_name()

    register(name, ("1.0.0", HOOK), ("2.0.0", NO_HASHTAG))

    passing = CheckRun.objects.get(version=row(name, "1.0.0"))
    failing = CheckRun.objects.get(version=row(name, "2.0.0"))
    assert (passing.trigger, passing.actor, passing.passed) == ("registration", "alice", True)
    assert [r["rendered"] for r in passing.results] == [
        "🔥 AI changed it - See how #trending #AI"
    ] * 2
    assert failing.passed is False
    assert failing.results[1] == {
        "name": "keeps the hashtag",
        "passed": False,
        "rendered": "🔥 AI changed it - See how",
        "failures": [
            {
                "expectation": "matches regular expression '#AI\\b'",
                "message": "not found in the rendered text",
            }
        ],
    }


CHAT = normalize_extra(
    [
        {"role": "system", "content": "You write hooks for {persona}. Answer in JSON."},
        {"role": "user", "content": "A hook about {topic}."},
    ],
    {"model_name": "gpt-4o", "temperature": 0.3},
    {"type": "object", "properties": {"hook": {"type": "string"}}, "required": ["hook"]},
)
CHAT_CASES = [
    {
        "name": "system message names the persona",
        "values": {"persona": "founders", "topic": "pricing"},
        "messages": [{"message": 1, "role": "system", "contains": "founders"}],
        "sample_output": '{"hook": "Stop guessing your price"}',
    },
    {
        "name": "user message stays short",
        "values": {"persona": "founders", "topic": "pricing"},
        "messages": [{"role": "user", "max_length": 10}],
        "sample_output": '{"headline": "Stop"}',
    },
]


def test_a_chat_versions_message_and_answer_checks_run_at_registration(registry_uri, unique_name):
    name = unique_name()

    batch = queue.batch_register(
        versions=[
            NewVersion(
                name,
                "1.0.0",
                messages_text(CHAT["messages"]),
                {**METADATA, "test_cases": CHAT_CASES},
                extra=CHAT,
            )
        ],
        actor="alice",
    )

    batch.refresh_from_db()
    assert batch.status == "succeeded", list(batch.operations.values_list("last_error"))
    version = row(name, "1.0.0")
    assert version.extra == CHAT
    run = CheckRun.objects.get(version=version)
    assert (run.trigger, run.passed) == ("registration", False)
    assert [(r["name"], r["passed"], r["failures"]) for r in run.results] == [
        ("system message names the persona", True, []),
        (
            "user message stays short",
            False,
            [
                {
                    "expectation": "message 2 (user) at most 10 characters",
                    "message": "is 21 characters long, 11 over",
                },
                {
                    "expectation": "sample_output is JSON matching the response format",
                    "message": "$: missing required field 'hook'",
                },
            ],
        ),
    ]


def test_a_chat_case_naming_a_message_the_version_lacks_is_refused_at_registration(unique_name):
    name = unique_name()
    cases = [{"name": "third", "messages": [{"message": 3, "contains": "x"}]}]

    with pytest.raises(BatchRegistrationError) as raised:
        PromptModel(
            name,
            CHAT["messages"],
            "1.0.0",
            metadata={"test_cases": cases},
            model_config=CHAT["model_config"],
        ).register()

    assert raised.value.errors == [
        f"{name} 1.0.0: test_cases: test case 'third': messages[0]: there is no message 3: "
        "the template has 2 message(s); number them from 1"
    ]
    assert not TemplateVersion.objects.filter(template__name=name).exists()


def test_the_diff_names_the_message_check_a_new_chat_version_breaks(unique_name):
    name = unique_name()
    reworded = normalize_extra(
        [CHAT["messages"][0], {"role": "user", "content": "Please write one hook about {topic}."}],
        CHAT["model_config"],
        CHAT["response_format"],
    )
    cases = [{**CHAT_CASES[0], "messages": [{"role": "user", "max_length": 25}]}]
    batch = queue.batch_register(
        versions=[
            NewVersion(
                name,
                version,
                messages_text(extra["messages"]),
                {**METADATA, "test_cases": cases},
                extra=extra,
            )
            for version, extra in (("1.0.0", CHAT), ("1.0.1", reworded))
        ],
        actor="alice",
    )
    batch.refresh_from_db()
    assert batch.status == "succeeded", list(batch.operations.values_list("last_error"))

    [broken] = checks.compare(row(name, "1.0.0"), row(name, "1.0.1"))

    assert (broken.name, [str(f) for f in broken.failures]) == (
        "system message names the persona",
        ["message 2 (user) at most 25 characters: is 36 characters long, 11 over"],
    )


def test_a_version_without_cases_gets_no_run(unique_name):
    name = unique_name()

    register(name, ("1.0.0", HOOK), cases=[])

    assert not CheckRun.objects.exists()
    assert checks.snapshot(row(name, "1.0.0"), actor="x")["status"] == "none"


# -- the gate ----------------------------------------------------------------------------------


def test_approving_a_request_whose_cases_fail_needs_a_written_reason_naming_them(
    users, unique_name
):
    name = unique_name()
    register(name, ("1.0.0", NO_HASHTAG))
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    assert request.checks["status"] == "fail"
    assert request.checks["failing"] == ["keeps the hashtag"]

    with pytest.raises(PolicyError) as refused:
        reviews.approve(users["bob"], request.pk, comment="fine")

    assert str(refused.value) == (
        f"#{request.pk} {name} 1.0.0 -> staging: test cases fail ({name} 1.0.0: keeps the "
        "hashtag): approving anyway needs a written reason to override the checks"
    )
    assert not Approval.objects.exists()
    assert mlflow_stage(name, "1.0.0") == "dev"


def test_a_reviewers_written_override_is_audited_and_lets_the_worker_promote(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", NO_HASHTAG))
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )

    reviews.approve(
        users["bob"], request.pk, checks_reason="hashtags are dropped on purpose this season"
    )

    request.refresh_from_db()
    assert (request.status, request.outcome) == ("done", "carried out")
    assert mlflow_stage(name, "1.0.0") == "staging"
    approval = Approval.objects.get(request=request)
    assert approval.checks_override_reason == "hashtags are dropped on purpose this season"
    event = AuditEvent.objects.get(action="request.approved", object_id=str(request.pk))
    assert event.after["checks_override_reason"] == "hashtags are dropped on purpose this season"
    assert event.after["checks_failing"] == [f"{name} 1.0.0: keeps the hashtag"]
    assert "Checks override: hashtags are dropped" in request.comments.get().text
    before_promotion = CheckRun.objects.get(version=row(name, "1.0.0"), trigger="promotion")
    assert before_promotion.passed is False  # run again, and overridden


def test_the_worker_refuses_a_promotion_while_a_case_fails_without_an_override(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", NO_HASHTAG))
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    # Filed before checks existed: nothing recorded, so approving asked for no reason.
    PromotionRequest.objects.filter(pk=request.pk).update(checks={})

    reviews.approve(users["bob"], request.pk)

    request.refresh_from_db()
    assert request.status == "failed"
    assert request.outcome == (
        f"#{request.pk} {name} 1.0.0 -> staging: test cases fail (keeps the hashtag): a "
        "reviewer must approve with a written reason to promote it despite them"
    )
    assert mlflow_stage(name, "1.0.0") == "dev"
    assert CheckRun.objects.filter(version=row(name, "1.0.0"), trigger="promotion").exists()
    failed = AuditEvent.objects.get(action="request.failed", object_id=str(request.pk))
    assert "keeps the hashtag" in failed.after["outcome"]


def test_passing_cases_need_no_reason(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", HOOK))
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )

    reviews.approve(users["bob"], request.pk)

    request.refresh_from_db()
    assert (request.checks["status"], request.status) == ("pass", "done")


def test_a_release_dry_run_says_which_checks_fail(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", NO_HASHTAG))

    [plan] = releases.dry_run([ReleaseLine(name, "1.0.0", "staging")])

    assert plan.problems == (
        f"{name} 1.0.0: check failed: test cases: 1 of 2 test case(s) fail: keeps the hashtag",
    )


# -- on demand, and the pages ------------------------------------------------------------------


def test_an_author_or_reviewer_runs_the_checks_on_demand_and_it_is_audited(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", HOOK))
    version = row(name, "1.0.0")
    client = Client()
    client.force_login(users["bob"])

    response = client.post(f"/versions/{version.pk}/run-checks", {"next": "/requests/"})

    assert (response.status_code, response["Location"]) == (303, "/requests/")
    run = CheckRun.objects.get(version=version, trigger="on_demand")
    assert (run.actor, run.passed) == ("bob", True)
    event = AuditEvent.objects.get(action="checks.run")
    assert (event.actor, event.object_id) == ("bob", f"{name}@1.0.0")
    assert event.after == {"trigger": "on_demand", "passed": True, "cases": 2, "failing": []}


def test_an_analyst_may_not_run_them(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", HOOK))
    client = Client()
    client.force_login(users["dave"])

    response = client.post(f"/versions/{row(name, '1.0.0').pk}/run-checks")

    assert response.status_code == 403
    assert not CheckRun.objects.filter(trigger="on_demand").exists()


def test_an_htmx_run_answers_with_the_results_partial_escaped(users, unique_name):
    name = unique_name()
    cases = [{"name": "<b>bold</b>", "values": {"who": "<script>x</script>"}, "contains": "!"}]
    register(name, ("1.0.0", "Hi {who}"), cases=cases)
    client = Client()
    client.force_login(users["erin"])

    response = client.post(
        f"/versions/{row(name, '1.0.0').pk}/run-checks", headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="checks-')
    assert "&lt;b&gt;bold&lt;/b&gt;" in response.text
    assert "Hi &lt;script&gt;x&lt;/script&gt;" in response.text
    assert "<script>x" not in response.text
    assert "contains &#x27;!&#x27;: not found in the rendered text" in response.text


def test_the_request_page_shows_results_and_what_the_new_version_breaks(users, unique_name):
    name = unique_name()
    register(name, ("1.0.0", HOOK))
    get_registry().promote(name, "1.0.0", "staging")
    register(name, ("2.0.0", NO_HASHTAG))
    sync(name)
    get_registry().promote(name, "1.0.0", "production")
    sync(name)
    get_registry().promote(name, "2.0.0", "staging")
    sync(name)
    request = reviews.file_request(
        users["erin"], template_name=name, version="2.0.0", target="production", justification="j"
    )
    client = Client()
    client.force_login(users["bob"])

    page = client.get(f"/requests/{request.pk}/").text

    assert "Breaks 1 test case that 1.0.0 (production) passes" in page
    assert "keeps the hashtag: matches regular expression" in page
    assert "Reason for approving although test cases fail" in page
    assert f'action="/versions/{row(name, "2.0.0").pk}/run-checks"' in page
    listing = client.get("/requests/?tab=all").text
    assert "checks fail: keeps the hashtag" in listing
