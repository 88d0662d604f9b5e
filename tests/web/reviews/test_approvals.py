"""Promotion requests, approvals, rollbacks and releases against a real MLflow (SQLite store).

Approved requests become operations that run in-process here (tasks eager); the same
operations run on real Celery workers in tests/web/reviews/test_approvals_workers.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_ui.core.policy import PolicyError
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.audit import history
from registry_ui.web.auth.roles import REVIEWERS
from registry_ui.web.models import (
    Approval,
    AuditEvent,
    Operation,
    PromotionRequest,
    TemplateFlag,
    TemplateVersion,
)
from registry_ui.web.operations import tasks as operation_tasks
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import inbox, releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine
from tests.support.users import member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.fixture
def users(alice, erin, bob, carol, dave):
    """The shared cast (tests/web/conftest.py): alice writes the versions, erin files
    requests, bob, carol and dan (a third reviewer, only here) review; dave analyses."""
    dan = member("dan", REVIEWERS)
    return {user.username: user for user in (alice, erin, bob, carol, dan, dave)}


def template(name, versions, stages=()):
    """Register versions (written by alice) and move them through MLflow, then mirror."""
    models = [
        PromptModel(name, text, version, metadata={"author": "alice", "engagement_target": 0.05})
        for version, text in versions
    ]
    PromptModel.register_many(models)
    sync(name)
    for version, target in stages:
        get_registry().promote(name, version, target)
        sync(name)  # the mirror sees each move, as the webhook or the sync would
    return models


def sync(name):
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")


def mlflow_stages(name):
    return {r.version: r.stage.value for r in get_registry().gateway.list_versions(name)}


def mirror_stages(name):
    return dict(TemplateVersion.objects.filter(template__name=name).values_list("version", "stage"))


V = [("1.0.0", "Hi {who}"), ("1.0.1", "Hello {who}"), ("1.0.2", "Hey {who}")]


def test_a_staging_request_with_one_approval_is_carried_out(users, unique_name):
    name = unique_name()
    template(name, V[:1])

    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="ok"
    )
    assert (request.status, request.required_approvals) == ("open", 1)
    reviews.approve(users["bob"], request.pk, comment="looks right")

    request.refresh_from_db()
    assert (request.status, request.outcome) == ("done", "carried out")
    assert mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "staging"}
    assert Operation.objects.get(request=request).status == "succeeded"
    actions = list(
        AuditEvent.objects.filter(object_type="promotion_request", object_id=str(request.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "request.filed",
        "request.approved",
        "request.approved_for_execution",
        "request.executed",
    ]
    executed = AuditEvent.objects.get(action="request.executed", object_id=str(request.pk))
    assert executed.after["approved_by"] == ["bob"]
    assert executed.after["justification"] == "ok"
    assert request.comments.get().text == "looks right"


def test_a_chat_template_is_promoted_to_production_with_its_model_configuration(users, unique_name):
    """The worker's check before it moves a stage hashes a chat version's messages, model
    configuration and response format, as registration did: an untouched one moves."""
    name = unique_name()
    messages = [{"role": "system", "content": "You write {tone} posts."},
                {"role": "user", "content": "About {topic}"}]  # fmt: skip
    PromptModel.register_many(
        [PromptModel(name, messages, "1.0.0", metadata={"author": "alice"},
                     model_config={"model": "gpt-4o-mini", "temperature": 0.2}),
         PromptModel(name, messages, "1.1.0", metadata={"author": "alice"},
                     model_config={"model": "gpt-4o-mini", "temperature": 0.7})]
    )  # fmt: skip
    sync(name)

    for target, reviewers in (("staging", ["bob"]), ("production", ["bob", "carol"])):
        request = reviews.file_request(
            users["erin"],
            template_name=name,
            version="1.1.0",
            target=target,
            justification="warmer",
        )
        for reviewer in reviewers:
            reviews.approve(users[reviewer], request.pk, comment="ok")
        request.refresh_from_db()
        assert (request.status, request.outcome) == ("done", "carried out"), request.outcome

    assert mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "dev", "1.1.0": "production"}
    row = TemplateVersion.objects.get(template__name=name, version="1.1.0")
    assert row.tampered_at is None
    assert row.extra["model_config"]["temperature"] == 0.7


def test_production_needs_two_distinct_reviewers_neither_requester_nor_author(users, unique_name):
    name = unique_name()
    template(name, V[:1], [("1.0.0", "staging")])
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="production", justification="j"
    )
    assert request.required_approvals == 2
    assert request.gate["status"] == "no_data"

    users["erin"].groups.add(Group.objects.get(name="reviewers"))
    users["alice"].groups.add(Group.objects.get(name="reviewers"))
    erin = User.objects.get(username="erin")  # fresh permission cache
    alice = User.objects.get(username="alice")
    with pytest.raises(PolicyError, match="you filed"):
        reviews.approve(erin, request.pk)
    with pytest.raises(PolicyError, match="author of the version"):
        reviews.approve(alice, request.pk)

    reviews.approve(users["bob"], request.pk)
    reviews.approve(users["bob"], request.pk)  # a retried click counts once
    request.refresh_from_db()
    assert (request.status, request.approvals.count()) == ("open", 1)
    assert mlflow_stages(name) == {"1.0.0": "staging"}

    reviews.approve(users["carol"], request.pk)
    request.refresh_from_db()
    assert request.status == "done"
    assert mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "production"}
    held = history.production_at(name, timezone.now())
    assert (held["version"], held["why"], held["request_id"]) == ("1.0.0", "j", request.pk)
    assert sorted(held["approved_by"]) == ["bob", "carol"]
    with pytest.raises(PolicyError, match="is done"):
        reviews.approve(users["dan"], request.pk)


def test_the_database_refuses_approvals_by_the_requester_or_an_author(users, unique_name):
    name = unique_name()
    template(name, V[:1])
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )

    def insert(reviewer, **copies):
        fields = {
            "request": request,
            "reviewer": reviewer,
            "reviewer_username": reviewer.username,
            "requester_id": request.requester_id,
            "version_authors": request.version_authors,
            **copies,
        }
        with pytest.raises(IntegrityError), transaction.atomic():
            Approval.objects.create(**fields)

    insert(users["erin"])  # the requester
    insert(users["alice"])  # the version's author
    # Copies that do not match the request are refused too (a trigger), so the CHECK
    # constraints cannot be dodged by writing other copies.
    insert(users["bob"], requester_id=users["bob"].pk)
    insert(users["alice"], version_authors=",")
    assert request.version_authors == ",alice,"
    assert not Approval.objects.exists()


def test_one_open_request_per_version_and_target(users, unique_name):
    name = unique_name()
    template(name, V[:1])
    first = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    with pytest.raises(PolicyError, match=rf"request #{first.pk} to move it to staging is open"):
        reviews.file_request(
            users["alice"], template_name=name, version="1.0.0", target="staging", justification="j"
        )
    with transaction.atomic(), pytest.raises(IntegrityError):
        PromotionRequest.objects.create(
            template=first.template,
            version=first.version,
            target_stage="staging",
            requester=users["alice"],
            justification="j",
            required_approvals=1,
        )


@pytest.mark.parametrize(
    ("who", "action", "error"),
    [
        ("dave", "file", "request_promotion permission"),
        ("bob", "file", "request_promotion permission"),
        ("erin", "approve", "approve_promotion permission"),
        ("dave", "approve", "approve_promotion permission"),
        ("erin", "reject", "approve_promotion permission"),
        ("erin", "rollback", "rollback_production permission"),
        ("dave", "comment", "comment_request permission"),
    ],
)
def test_services_refuse_roles_without_the_permission(users, unique_name, who, action, error):
    name = unique_name()
    template(name, V[:1])
    request = reviews.file_request(
        users["alice"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    user = users[who]
    calls = {
        "file": lambda: reviews.file_request(
            user, template_name=name, version="1.0.0", target="staging", justification="j"
        ),
        "approve": lambda: reviews.approve(user, request.pk),
        "reject": lambda: reviews.reject(user, request.pk, comment="no"),
        "rollback": lambda: reviews.file_rollback(
            user, template_name=name, version="1.0.0", reason="r"
        ),
        "comment": lambda: reviews.add_comment(user, request.pk, text="hi"),
    }
    with pytest.raises(PermissionDenied, match=error):
        calls[action]()
    request.refresh_from_db()
    assert (request.status, request.approvals.count(), request.comments.count()) == ("open", 0, 0)


def test_bad_input_is_refused_with_what_is_accepted(users, unique_name):
    name = unique_name()
    template(name, V[:1])
    erin = users["erin"]
    with pytest.raises(PolicyError, match="justification is required"):
        reviews.file_request(erin, template_name=name, version="1.0.0", target="staging",
                               justification="  ")  # fmt: skip
    with pytest.raises(PolicyError, match="straight to production"):
        reviews.file_request(erin, template_name=name, version="1.0.0", target="production",
                               justification="j")  # fmt: skip
    with pytest.raises(PolicyError, match="unknown stage 'prod'"):
        reviews.file_request(erin, template_name=name, version="1.0.0", target="prod",
                               justification="j")  # fmt: skip
    with pytest.raises(PolicyError, match="no such version"):
        reviews.file_request(erin, template_name=name, version="9.0.0", target="staging",
                               justification="j")  # fmt: skip
    with pytest.raises(PolicyError, match="at most 5000"):
        reviews.file_request(erin, template_name=name, version="1.0.0", target="staging",
                               justification="x" * 5001)  # fmt: skip
    assert not PromotionRequest.objects.exists()


def test_a_rejection_needs_a_comment_and_closes_the_request(users, unique_name):
    name = unique_name()
    template(name, V[:1])
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    with pytest.raises(PolicyError, match="comment saying why"):
        reviews.reject(users["bob"], request.pk, comment="")
    reviews.reject(users["bob"], request.pk, comment="wrong tone")
    reviews.reject(users["bob"], request.pk, comment="wrong tone")  # a retry: no change
    request.refresh_from_db()
    assert (request.status, request.outcome) == ("rejected", "wrong tone")
    assert [c.kind for c in request.comments.all()] == ["rejection"]
    with pytest.raises(PolicyError, match="only open requests can be approved"):
        reviews.approve(users["carol"], request.pk)
    assert mlflow_stages(name) == {"1.0.0": "dev"}


def test_a_request_goes_stale_when_another_version_is_promoted(users, unique_name):
    name = unique_name()
    template(name, V[:2], [("1.0.0", "staging")])
    old = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="production", justification="j"
    )
    reviews.approve(users["bob"], old.pk)
    newer = reviews.file_request(
        users["erin"], template_name=name, version="1.0.1", target="staging", justification="j"
    )
    reviews.approve(users["carol"], newer.pk)  # 1.0.1 replaces 1.0.0 in staging

    old.refresh_from_db()
    assert old.status == "stale"
    assert "stages changed" in old.outcome
    with pytest.raises(PolicyError, match="is stale"):
        reviews.approve(users["dan"], old.pk)
    assert mlflow_stages(name) == {"1.0.0": "archived", "1.0.1": "staging"}


@pytest.fixture
def held_messages(monkeypatch):
    """Hold the workers' messages so the test can change MLflow between approval and
    execution, as a busy queue would. The real send path is covered by the other tests."""
    from registry_ui.web.operations.tasks import run_operation

    held = []
    monkeypatch.setattr(run_operation, "delay", lambda operation_id: held.append(operation_id))
    return held


def test_the_worker_checks_the_policy_again_against_mlflow(users, unique_name, held_messages):
    from registry_ui.web.operations import worker

    name = unique_name()
    template(name, V[:2], [("1.0.0", "staging")])
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="production", justification="j"
    )
    reviews.approve(users["bob"], request.pk)
    reviews.approve(users["carol"], request.pk)
    [operation_id] = held_messages
    # Someone moves staging straight in MLflow before the worker gets to the request.
    get_registry().promote(name, "1.0.1", "staging")

    outcome = worker.run(operation_id, send=operation_tasks.send_after_commit)

    request.refresh_from_db()
    assert outcome.status == "failed"
    assert request.status == "failed"
    assert "were changed in MLflow, outside registry_ui, after this request" in request.outcome
    assert mlflow_stages(name) == mirror_stages(name) == {"1.0.0": "archived", "1.0.1": "staging"}
    assert TemplateFlag.objects.filter(template__name=name, kind="write_refused").exists()
    assert AuditEvent.objects.filter(action="request.failed", object_id=str(request.pk)).exists()


def test_an_approver_who_lost_the_role_stops_counting(users, unique_name, held_messages):
    from registry_ui.web.operations import worker

    name = unique_name()
    template(name, V[:1])
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    reviews.approve(users["bob"], request.pk)
    users["bob"].groups.clear()

    worker.run(held_messages[0], send=operation_tasks.send_after_commit)

    request.refresh_from_db()
    assert request.status == "failed"
    assert "0 valid approval(s) of 1 required" in request.outcome
    assert mlflow_stages(name) == {"1.0.0": "dev"}


def production_history(name):
    """1.0.0 then 1.0.1 held production; 1.0.2 is in staging."""
    template(
        name,
        V,
        [
            ("1.0.0", "staging"),
            ("1.0.0", "production"),
            ("1.0.1", "staging"),
            ("1.0.1", "production"),
            ("1.0.2", "staging"),
        ],
    )


def test_a_rollback_brings_back_the_previous_production_version(users, unique_name):
    name = unique_name()
    production_history(name)
    with pytest.raises(PolicyError, match="a reason is required"):
        reviews.file_rollback(users["bob"], template_name=name, version="1.0.0", reason="")
    with pytest.raises(PolicyError, match="promote it instead"):
        reviews.file_rollback(users["bob"], template_name=name, version="1.0.2", reason="r")

    request = reviews.file_rollback(
        users["bob"], template_name=name, version="1.0.0", reason="1.0.1 doubles the emoji"
    )
    assert (request.kind, request.required_approvals) == ("rollback", 1)
    with pytest.raises(PolicyError, match="you filed"):
        reviews.approve(users["bob"], request.pk)
    reviews.approve(users["carol"], request.pk)

    request.refresh_from_db()
    assert request.status == "done"
    expected = {"1.0.0": "production", "1.0.1": "archived", "1.0.2": "staging"}
    assert mlflow_stages(name) == mirror_stages(name) == expected
    event = AuditEvent.objects.get(action="request.executed", object_id=str(request.pk))
    assert (event.after["kind"], event.after["justification"]) == (
        "rollback",
        request.justification,
    )


def test_a_rollback_to_a_version_that_never_held_production_is_refused(users, unique_name):
    name = unique_name()
    template(name, V[:2], [("1.0.0", "staging"), ("1.0.1", "staging")])  # 1.0.0 archived
    with pytest.raises(PolicyError, match="never held production"):
        reviews.file_rollback(users["bob"], template_name=name, version="1.0.0", reason="r")


def test_with_no_approval_required_a_rollback_runs_at_once(users, unique_name, settings):
    settings.APPROVALS_REQUIRED = {**settings.APPROVALS_REQUIRED, "rollback": 0}
    name = unique_name()
    production_history(name)
    request = reviews.file_rollback(
        users["bob"], template_name=name, version="1.0.0", reason="outage"
    )
    request.refresh_from_db()
    assert request.status == "done"
    assert mlflow_stages(name)["1.0.0"] == "production"


# Approving despite a failing gate: tests/web/experiments/test_experiments.py (a real gate,
# evaluated again at approval).


def two_templates(unique_name):
    a, b = unique_name("a"), unique_name("b")
    template(a, V[:2], [("1.0.0", "staging"), ("1.0.0", "production"), ("1.0.1", "staging")])
    template(b, V[:2], [("1.0.0", "staging")])
    return a, b


def test_a_release_dry_run_shows_changes_and_problems(users, unique_name):
    a, b = two_templates(unique_name)
    plans = releases.dry_run(
        [ReleaseLine(a, "1.0.1", "production"), ReleaseLine(b, "1.0.1", "production")]
    )
    assert plans[0].changes == ("1.0.1: staging -> production", "1.0.0: production -> archived")
    assert plans[0].problems == ()
    assert any("straight to production" in p for p in plans[1].problems)
    with pytest.raises(PolicyError, match="straight to production"):
        releases.file_release(
            users["erin"],
            lines=[ReleaseLine(a, "1.0.1", "production"), ReleaseLine(b, "1.0.1", "production")],
            justification="j",
        )
    assert not PromotionRequest.objects.exists()


def test_a_release_is_approved_once_and_carried_out_template_by_template(users, unique_name):
    a, b = two_templates(unique_name)
    release = releases.file_release(
        users["erin"],
        lines=[ReleaseLine(a, "1.0.1", "production"), ReleaseLine(b, "1.0.1", "staging")],
        justification="spring release",
    )
    assert release.required_approvals == 2
    [item_a, _] = release.items.order_by("id")
    with pytest.raises(PolicyError, match="part of release"):
        reviews.approve(users["bob"], item_a.pk)

    reviews.approve(users["bob"], release.pk)
    reviews.approve(users["carol"], release.pk)

    release.refresh_from_db()
    assert release.status == "done", release.outcome
    assert set(release.items.values_list("status", flat=True)) == {"done"}
    assert mlflow_stages(a) == mirror_stages(a) == {"1.0.0": "archived", "1.0.1": "production"}
    assert mlflow_stages(b) == mirror_stages(b) == {"1.0.0": "archived", "1.0.1": "staging"}
    executed = AuditEvent.objects.filter(action="request.executed")
    assert {e.after["template"] for e in executed} == {a, b}


def test_a_failed_release_moves_the_moved_templates_back(users, unique_name, held_messages):
    from registry_ui.web.operations import worker

    a, b = two_templates(unique_name)
    before_a, before_b = mlflow_stages(a), mlflow_stages(b)
    release = releases.file_release(
        users["erin"],
        lines=[ReleaseLine(a, "1.0.1", "production"), ReleaseLine(b, "1.0.1", "staging")],
        justification="spring release",
    )
    reviews.approve(users["bob"], release.pk)
    reviews.approve(users["carol"], release.pk)
    # b changes in MLflow before the worker reaches it: its item is stale and fails.
    get_registry().promote(b, "1.0.0", "production")
    before_b = mlflow_stages(b)

    outcome = worker.run(held_messages[0], send=operation_tasks.send_after_commit)

    release.refresh_from_db()
    assert outcome.status == "failed"
    assert release.status == "failed"
    assert "moved back" in release.outcome
    assert mlflow_stages(a) == mirror_stages(a) == before_a
    assert mlflow_stages(b) == mirror_stages(b) == before_b
    report = {e["template"]: e["status"] for e in release.report["items"].values()}
    # b failed its check before anything was written to it: nothing of it to move back.
    assert report == {a: "moved back", b: "failed"}
    assert set(release.items.values_list("status", flat=True)) == {"failed"}


def test_waiting_for_counts_requests_a_reviewer_can_act_on(users, unique_name):
    name = unique_name()
    template(name, V[:2])
    one = reviews.file_request(
        users["erin"], template_name=name, version="1.0.0", target="staging", justification="j"
    )
    reviews.file_request(
        users["erin"], template_name=name, version="1.0.1", target="staging", justification="j"
    )
    assert inbox.waiting_for(users["bob"]) == 2
    assert inbox.waiting_for(users["erin"]) == 0
    reviews.reject(users["bob"], one.pk, comment="no")
    assert inbox.waiting_for(users["carol"]) == 1
