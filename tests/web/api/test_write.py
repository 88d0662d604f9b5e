"""Write endpoints: validate and register template files, file requests (dry run too),
approve, reject, comment, withdraw; every role and scope, every change audited with the
token's name. The registry is a real MLflow (SQLite store); tasks run in-process."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from registry_ui.web.api import tokens
from registry_ui.web.auth.roles import REVIEWERS
from registry_ui.web.models import (
    ApiToken,
    Approval,
    AuditEvent,
    Batch,
    IdempotentCall,
    PromotionRequest,
    RequestComment,
)
from registry_ui.web.reviews import services as reviews
from tests.support.users import member
from tests.web.api.conftest import ApiClient, personal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sqlite_registry_uri")]


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    cache.clear()


def template_file(name: str, version: str = "1.0.0", text: str = "Hi {who}", tests="") -> str:
    return (
        f"name: {name}\nversion: {version}\ntemplate: {text!r}\nmetadata:\n  author: alice\n{tests}"
    )


def test_validate_names_each_problem_with_its_file_line_and_column(alice):
    api = personal(alice, ["read"])
    files = [
        {"path": "ok.yaml", "content": template_file("team/ok")},
        {"path": "sub/bad.yaml", "content": "name: team/bad\nversion: 1.0\ntemplate: 'Hi {'\n"},
    ]

    response = api.post("/validate", {"files": files})

    body = response.json()
    assert response.status_code == 200 and body["valid"] is False
    assert body["versions"] == [{"name": "team/ok", "version": "1.0.0"}]
    paths = {(p["path"], p["line"]) for p in body["problems"]}
    assert ("sub/bad.yaml", 2) in paths
    assert all(p["column"] >= 1 and p["message"] for p in body["problems"])
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "path", ["/etc/passwd.yaml", "../up.yaml", "a/../../b.yaml", ".hidden.yaml", "notes.txt", ""]
)
def test_a_file_path_outside_the_batch_is_refused(alice, path):
    response = personal(alice, ["read"]).post(
        "/validate", {"files": [{"path": path, "content": "x"}]}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "files[0].path"
    assert ".yaml or .yml" in response.json()["errors"][0]["accepted"]


def test_register_files_a_batch_and_a_retry_with_the_key_gets_the_same_answer(alice, unique_name):
    name = unique_name()
    api = personal(alice, ["register"])
    body = {"files": [{"path": "t.yaml", "content": template_file(name)}], "reason": "ci"}

    first = api.post("/batches", body, headers={"Idempotency-Key": "run-1"})
    again = api.post("/batches", body, headers={"Idempotency-Key": "run-1"})
    other = api.post(
        "/batches",
        {**body, "reason": "changed"},
        headers={"Idempotency-Key": "run-1"},
    )

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert first.json()["versions"] == [{"name": name, "version": "1.0.0"}]
    assert Batch.objects.count() == 1 and IdempotentCall.objects.count() == 1
    assert other.status_code == 409 and "different call" in other.json()["detail"]
    batch = Batch.objects.get()
    assert batch.actor == "alice" and batch.reason == "ci" and batch.created_by == alice
    calls = AuditEvent.objects.filter(action="api.call")
    assert calls.count() == 1  # the replay and the refused call changed nothing
    assert "personal token 'tests'" in calls.first().after["token"]


def test_register_refuses_invalid_files_naming_line_and_column(alice):
    response = personal(alice, ["register"]).post(
        "/batches",
        {"files": [{"path": "bad.yaml", "content": "name: team/x\nversion: one\n"}]},
    )

    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["path"] == "bad.yaml" and error["line"] >= 1 and error["column"] >= 1
    assert not Batch.objects.exists()


def test_register_needs_an_author_account(dave, alice, ci_bot, service_api, unique_name):
    # alice: the metadata author must name an author's account (issue 16, finding 8).
    body = {"files": [{"path": "t.yaml", "content": template_file(unique_name())}]}

    analyst = personal(dave, ["register"]).post("/batches", body)
    pipeline = service_api.post("/batches", body)

    assert analyst.status_code == 403 and "register_version" in analyst.json()["detail"]
    assert pipeline.status_code == 202, pipeline.json()
    assert Batch.objects.get().actor == "ci-bot"


def test_a_version_registered_already_files_nothing(alice, unique_name):
    name = unique_name()
    from registry_ui.prompt_model import PromptModel

    PromptModel.register_many(
        [PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": "alice"})]
    )
    from registry_ui.prompt_model import get_registry
    from registry_ui.web.prompts.mirror import mirror_template

    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    content = f"name: {name}\nversion: 1.0.0\ntemplate: 'Hi {{who}}'\nmetadata:\n  author: alice\n"

    response = personal(alice, ["register"]).post(
        "/batches", {"files": [{"path": "t.yaml", "content": content}]}
    )

    assert response.status_code == 200, response.content
    assert response.json()["batch"] is None and not Batch.objects.exists()


# -- requests -------------------------------------------------------------------------------


def test_a_dry_run_files_nothing_and_says_what_would_be(erin, world):
    api = personal(erin, ["request"])
    ask = {"template": "team/greeting", "version": "1.2.0", "target": "staging"}

    dry = api.post("/requests", {**ask, "justification": "ready", "dry_run": True})
    real = api.post("/requests", {**ask, "justification": "ready"})
    twice = api.post("/requests", {**ask, "justification": "ready"})

    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert dry.json()["request"]["target_stage"] == "staging"
    assert real.status_code == 201 and real.json()["request"]["status"] == "open"
    assert PromotionRequest.objects.count() == 1
    assert twice.status_code == 409 and "is open already" in twice.json()["detail"]
    assert twice.json()["type"].endswith("refused-by-policy")


def test_filing_needs_the_request_scope_and_an_author(erin, dave, world):
    ask = {"template": "team/greeting", "version": "1.2.0", "target": "staging"}
    ask["justification"] = "j"

    no_scope = personal(erin, ["read"]).post("/requests", ask)
    analyst = personal(dave, ["request"]).post("/requests", ask)

    assert no_scope.status_code == 403 and no_scope.json()["scope"] == "request"
    assert analyst.status_code == 403 and "request_promotion" in analyst.json()["detail"]
    assert not PromotionRequest.objects.exists()


def test_a_bad_body_is_a_problem_naming_each_field(erin, world):
    response = personal(erin, ["request"]).post("/requests", {"template": 5, "dry_run": "maybe"})

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "body.template",
        "body.version",
        "body.target",
        "body.justification",
        "body.dry_run",
    }
    accepted = {e["field"]: e["accepted"] for e in response.json()["errors"]}
    assert accepted["body.template"] == "a string" and accepted["body.dry_run"] == "true or false"


def test_two_reviewers_approve_with_personal_tokens(erin, bob, carol, world, in_process_tasks):
    request = reviews.file_request(
        erin, template_name="team/greeting", version="1.2.0", target="staging", justification="j"
    )

    approved = personal(bob, ["review"]).post(f"/requests/{request.pk}/approve", {"comment": "ok"})

    assert approved.status_code == 200, approved.content
    assert approved.json()["approvals"][0]["reviewer"] == "bob"
    assert Approval.objects.filter(request=request, reviewer=bob).exists()
    event = AuditEvent.objects.get(action="api.call", after__what="request.approve")
    assert event.actor == "bob" and "personal token" in event.after["token"]
    assert (event.source, event.get_source_display()) == ("api", "API")
    # The service's own event says where the change came from too: the API, not a command.
    approval = AuditEvent.objects.get(action="request.approved", actor="bob")
    assert approval.source == "api"
    listed = personal(bob, ["read"], name="reader").get("/audit?source=api&action=request.approved")
    assert listed.status_code == 200, listed.content
    assert [e["action"] for e in listed.json()["items"]] == ["request.approved"]


def test_a_service_token_can_never_approve_or_reject(root, erin, world):
    reviewer_bot = member("review-bot", REVIEWERS)
    row, raw = tokens.token_create(
        root, name="bot", scopes=["read", "request"], kind="service", account="review-bot"
    )
    request = reviews.file_request(
        erin, template_name="team/greeting", version="1.2.0", target="staging", justification="j"
    )
    bot = ApiClient(raw)

    no_scope = bot.post(f"/requests/{request.pk}/approve", {})
    ApiToken.objects.filter(pk=row.pk).update(scopes=["read", "review"])  # forced in the DB
    forced = bot.post(f"/requests/{request.pk}/approve", {})
    reject = bot.post(f"/requests/{request.pk}/reject", {"comment": "no"})

    assert reviewer_bot.has_perm("registry_web.approve_promotion")
    assert no_scope.status_code == 403 and no_scope.json()["scope"] == "review"
    assert forced.status_code == reject.status_code == 403
    assert "a service token cannot approve" in forced.json()["detail"]
    assert not Approval.objects.exists()
    assert PromotionRequest.objects.get().status == "open"


def test_four_eyes_hold_through_the_api(rita, alice, world):
    request = reviews.file_request(
        rita, template_name="team/greeting", version="1.2.0", target="staging", justification="j"
    )

    own = personal(rita, ["review"]).post(f"/requests/{request.pk}/approve", {})
    author = personal(alice, ["review"]).post(f"/requests/{request.pk}/approve", {})

    assert own.status_code == 409 and "four-eyes" in own.json()["detail"]
    assert author.status_code == 403 and "approve_promotion" in author.json()["detail"]
    assert not Approval.objects.exists()


def test_reject_comment_and_withdraw(erin, bob, world):
    first = reviews.file_request(
        erin, template_name="team/greeting", version="1.2.0", target="staging", justification="j"
    )
    reviewer, requester = personal(bob, ["review"]), personal(erin, ["request"])

    commented = requester.post(f"/requests/{first.pk}/comment", {"text": "any news?"})
    rejected = reviewer.post(f"/requests/{first.pk}/reject", {"comment": "wrong tone"})
    again = reviewer.post(f"/requests/{first.pk}/reject", {"comment": "wrong tone"})
    no_reason = reviewer.post(f"/requests/{first.pk}/reject", {"comment": ""})

    assert commented.status_code == 200
    assert RequestComment.objects.filter(author=erin, text="any news?").exists()
    assert rejected.status_code == again.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert no_reason.status_code in (200, 409)  # closed already: the retry changes nothing
    second = reviews.file_request(
        erin, template_name="team/greeting", version="1.2.0", target="staging", justification="j"
    )
    not_mine = reviewer.post(f"/requests/{second.pk}/withdraw")
    withdrawn = requester.post(f"/requests/{second.pk}/withdraw")
    assert not_mine.status_code == 403 and not_mine.json()["scope"] == "request"
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    whats = set(AuditEvent.objects.filter(action="api.call").values_list("after__what", flat=True))
    assert whats == {"request.comment", "request.reject", "request.withdraw"}


def test_a_rollback_is_filed_by_a_reviewer(bob, erin, world):
    reviewer = personal(bob, ["request"])
    from tests.support import mirror_rows

    mirror_rows.version(world["greeting"], "0.9.0", stage="archived", was_production=True)
    body = {"template": "team/greeting", "version": "0.9.0", "reason": "1.0.0 misfires"}

    dry = reviewer.post("/rollbacks", {**body, "dry_run": True})
    refused = personal(erin, ["request"]).post("/rollbacks", body)
    filed = reviewer.post("/rollbacks", body)

    assert dry.status_code == 200 and dry.json()["request"]["kind"] == "rollback"
    assert refused.status_code == 403 and "rollback_production" in refused.json()["detail"]
    assert filed.status_code == 201
    assert PromotionRequest.objects.filter(kind="rollback").count() == 1


@pytest.mark.parametrize(
    ("file", "field"),
    [
        ({"path": "a.yaml", "content": "name: \ud800"}, "body.files[0].content"),
        ({"path": "x" * 300 + ".yaml", "content": "x"}, "files[0].path"),
        ({"path": "a\nb.yaml", "content": "x"}, "files[0].path"),
    ],
)
def test_files_that_cannot_be_written_are_refused_naming_them(alice, file, field):
    response = personal(alice, ["read"]).post("/validate", {"files": [file]})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_a_lone_surrogate_in_any_text_is_refused(erin, world):
    response = personal(erin, ["request"]).post(
        "/requests",
        {
            "template": "team/greeting",
            "version": "1.2.0",
            "target": "staging",
            "justification": "ok \ud800",
        },
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body.justification"
    assert not PromotionRequest.objects.exists()
