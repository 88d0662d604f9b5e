"""Notifications: the in-app count, email to whoever can act, and the signed outgoing webhook.

Requests are filed against mirror rows made here (no MLflow call until a request is carried
out, which none of these tests do). Tasks run in-process, after the test's commit callbacks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from registry_ui.web.auth.roles import REVIEWERS
from registry_ui.web.models import NativeAliasRequest, NativePrompt, Template, TemplateVersion
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.inbox import review_inbox
from tests.support.users import member
from tests.web.test_settings import start_django

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_process_tasks")]

SITE = "https://registry.example.com"
SECRET = "webhook-secret-for-tests"


@pytest.fixture(autouse=True)
def notify_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = SITE
    settings.NOTIFY_WEBHOOK_URL = ""
    settings.NOTIFY_WEBHOOK_SECRET = ""
    settings.APPROVALS_REQUIRED = {"staging": 1, "production": 2, "rollback": 1}
    return settings


@pytest.fixture
def users(alice, bob, carol, dave):
    """The shared cast (tests/web/conftest.py), alice filing the requests, and reviewers of
    this file's own."""
    users = {user.username: user for user in (alice, bob, carol, dave)}
    users["frank"] = member("frank", REVIEWERS)  # wrote the versions: may not review them
    users["heidi"] = member("heidi", REVIEWERS, email="")  # a reviewer without an email address
    ivan = member("ivan", REVIEWERS)  # left the team
    ivan.is_active = False
    ivan.save()
    return users


def version(name, number="1.0.0", stage="dev"):
    template, _ = Template.objects.get_or_create(
        name=name, defaults={"registered_model_name": name.replace("/", "--")}
    )
    major, minor, patch = (int(part) for part in number.split("."))
    text = f"Hi {{who}} from {number}"
    return TemplateVersion.objects.create(
        template=template,
        version=number,
        major=major,
        minor=minor,
        patch=patch,
        stage=stage,
        text=text,
        content_sha256=hashlib.sha256(text.encode()).hexdigest(),
        mlflow_version="1",
        author="frank",
    )


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the after-commit notifications of whatever is done inside it."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def file(user, name, target="staging"):
    return reviews.file_request(
        user,
        template_name=name,
        version="1.0.0",
        target=target,
        justification="Warmer greeting;\nmeasured +4% replies",
    )


def recipients(outbox):
    return sorted(address for message in outbox for address in message.to)


# -- email -----------------------------------------------------------------------------------


def test_filing_emails_exactly_the_reviewers_who_may_approve(users, committed, mailoutbox):
    version("persona/greeter")

    with committed():
        request = file(users["alice"], "persona/greeter")

    assert recipients(mailoutbox) == ["bob@example.com", "carol@example.com"]
    message = mailoutbox[0]
    assert message.subject == (
        f"[registry_ui] Review needed: #{request.pk} persona/greeter 1.0.0 -> staging"
    )
    assert "alice asks to move persona/greeter 1.0.0 from dev to staging" in message.body
    assert "Warmer greeting;\nmeasured +4% replies" in message.body
    assert "Approvals: 0 of 1" in message.body
    assert f"{SITE}/requests/{request.pk}/" in message.body


def test_an_approval_short_of_enough_emails_only_the_reviewers_still_able_to_act(
    users, committed, mailoutbox
):
    version("persona/greeter", stage="staging")
    with committed():
        request = file(users["alice"], "persona/greeter", target="production")
    mailoutbox.clear()

    with committed():
        reviews.approve(users["bob"], request.pk)

    assert recipients(mailoutbox) == ["carol@example.com"]
    assert "Approvals: 1 of 2" in mailoutbox[0].body
    assert "Metric gate: no_target" in mailoutbox[0].body


def test_a_rejection_emails_the_requester_with_the_reason(users, committed, mailoutbox):
    version("persona/greeter")
    with committed():
        request = file(users["alice"], "persona/greeter")
    mailoutbox.clear()

    with committed():
        reviews.reject(users["bob"], request.pk, comment="Too salesy for this persona")

    assert recipients(mailoutbox) == ["alice@example.com"]
    message = mailoutbox[0]
    assert (
        message.subject == f"[registry_ui] #{request.pk} persona/greeter 1.0.0 -> staging: rejected"
    )
    assert "was rejected" in message.body
    assert "Too salesy for this persona" in message.body


def test_a_mail_server_failure_is_logged_and_the_request_still_stands(
    users, committed, settings, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    version("persona/greeter")

    with committed():
        request = file(users["alice"], "persona/greeter")

    request.refresh_from_db()
    assert request.status == "open"
    assert f"could not email 2 recipient(s) about the filed of request #{request.pk}" in caplog.text


def test_a_request_gone_before_the_worker_ran_is_logged_and_skipped(db, mailoutbox, caplog):
    from registry_ui.web.reviews import notifications

    notifications.deliver(999_999, "filed")

    assert mailoutbox == []
    assert "request #999999 no longer exists" in caplog.text


# -- webhook ---------------------------------------------------------------------------------


@dataclass
class Delivery:
    headers: Message
    body: bytes


class Receiver:
    """A real HTTP server on a free loopback port answering each POST with the next status."""

    def __init__(self):
        self.answers: list[int] = []
        self.deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append(Delivery(self.headers, body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/registry?token=t0k3n"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    receiver = Receiver()
    settings.NOTIFY_WEBHOOK_URL = receiver.url
    settings.NOTIFY_WEBHOOK_SECRET = SECRET
    yield receiver
    receiver.stop()


@pytest.fixture
def retried_in_process():
    """apply() semantics: a retry runs again at once, in this process, as a worker would later."""
    from registry_ui.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = previous


def signature_of(delivery: Delivery) -> str:
    timestamp = delivery.headers["X-Registry-UI-Timestamp"]
    signed = f"{timestamp}.".encode() + delivery.body
    return "v1=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()


def test_every_event_is_posted_as_signed_json(users, committed, receiver):
    version("persona/greeter")

    with committed():
        request = file(users["alice"], "persona/greeter")

    (delivery,) = receiver.deliveries
    assert delivery.headers["Content-Type"] == "application/json"
    assert abs(int(delivery.headers["X-Registry-UI-Timestamp"]) - time.time()) < 60
    assert delivery.headers["X-Registry-UI-Signature"] == signature_of(delivery)
    body = json.loads(delivery.body)
    assert body["event"] == "request.filed"
    assert body["request"] == {
        "id": request.pk,
        "kind": "promote",
        "template": "persona/greeter",
        "version": "1.0.0",
        "target_stage": "staging",
        "status": "open",
        "requester": "alice",
        "outcome": "",
        "url": f"{SITE}/requests/{request.pk}/",
    }
    assert body["sent_at"].startswith(time.strftime("%Y-", time.gmtime()))


def test_a_decision_is_posted_too(users, committed, receiver):
    version("persona/greeter")
    with committed():
        request = file(users["alice"], "persona/greeter")

    with committed():
        reviews.withdraw(users["alice"], request.pk)

    body = json.loads(receiver.deliveries[-1].body)
    assert (body["event"], body["request"]["status"]) == ("request.withdrawn", "withdrawn")


@pytest.mark.usefixtures("retried_in_process")
def test_a_webhook_answering_500_is_retried_until_delivered(users, committed, receiver):
    receiver.answers = [500, 500, 200]
    version("persona/greeter")

    with committed():
        file(users["alice"], "persona/greeter")

    assert len(receiver.deliveries) == 3
    assert all(d.headers["X-Registry-UI-Signature"] == signature_of(d) for d in receiver.deliveries)


def test_a_webhook_answering_400_is_logged_and_not_retried(users, committed, receiver, caplog):
    receiver.answers = [400]
    version("persona/greeter")

    with committed():
        file(users["alice"], "persona/greeter")

    assert len(receiver.deliveries) == 1
    assert "refused request.filed with 400: not retried" in caplog.text


@pytest.mark.usefixtures("retried_in_process")
def test_a_webhook_down_for_good_is_given_up_after_five_retries(users, committed, receiver, caplog):
    receiver.answers = [503] * 10
    version("persona/greeter")

    with committed():
        request = file(users["alice"], "persona/greeter")

    assert len(receiver.deliveries) == 6
    assert "WebhookUnavailable('request.filed to 127.0.0.1: answered 503')" in caplog.text
    assert "t0k3n" not in caplog.text  # the URL's token never reaches the logs
    request.refresh_from_db()
    assert request.status == "open"


def test_without_a_worker_a_failed_webhook_is_logged_once(users, committed, receiver, caplog):
    receiver.answers = [500]
    version("persona/greeter")

    with committed():
        request = file(users["alice"], "persona/greeter")

    assert len(receiver.deliveries) == 1
    assert (
        f"the webhook for the filed of request #{request.pk} failed and is not retried "
        "in-process: request.filed to 127.0.0.1: answered 500"
    ) in caplog.text


# -- in-app ----------------------------------------------------------------------------------


def test_a_reviewer_sees_how_many_requests_wait_for_them(users, client, sqlite_registry_uri):
    version("persona/greeter")
    file(users["alice"], "persona/greeter")

    client.force_login(users["bob"])
    response = client.get("/")

    assert response.status_code == 200
    assert "1 waiting for you" in response.text


def test_the_requester_and_the_author_see_no_badge(users, client, sqlite_registry_uri):
    version("persona/greeter")
    file(users["alice"], "persona/greeter")

    for username in ("alice", "frank"):
        client.force_login(users[username])
        response = client.get("/")

        assert response.context["waiting_for_me"] == 0
        assert "waiting for you" not in response.text


def test_the_count_costs_one_query_and_only_when_shown(users, django_assert_num_queries):
    version("persona/greeter")
    file(users["alice"], "persona/greeter")
    request = RequestFactory().get("/")
    request.user = User.objects.get(username="bob")
    request.user.has_perm("registry_web.approve_promotion")  # loads the permissions once

    with django_assert_num_queries(0):
        context = review_inbox(request)
    with django_assert_num_queries(1):
        assert context["waiting_for_me"] == 1


def native_move(requested_by: str, approvals: list[str], alias: str = "production"):
    prompt, _ = NativePrompt.objects.get_or_create(name="support-reply", governed=True)
    return NativeAliasRequest.objects.create(
        prompt=prompt,
        number=2,
        semver="1.1.0",
        alias=alias,
        requested_by=requested_by,
        approvals=approvals,
    )


def test_the_count_adds_native_alias_moves_in_the_same_one_query(users, django_assert_num_queries):
    version("persona/greeter")
    file(users["alice"], "persona/greeter")
    native_move("alice", ["carol"])  # waits for bob; carol approved it already
    done = native_move("alice", [], alias="staging")
    done.state = "done"
    done.save()

    def count(username: str, queries: int = 1) -> int:
        request = RequestFactory().get("/")
        request.user = User.objects.get(username=username)
        request.user.has_perm("registry_web.approve_promotion")  # loads the permissions once
        with django_assert_num_queries(queries):
            return review_inbox(request)["waiting_for_me"] + 0  # evaluates the lazy count

    assert count("bob") == 2  # the template's request and the open native move
    assert count("carol") == 1  # not the move she approved
    assert count("alice", queries=0) == 0  # not a reviewer: nothing to count


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"NOTIFY_WEBHOOK_URL": "ftp://x", "NOTIFY_WEBHOOK_SECRET": "s"},
            "NOTIFY_WEBHOOK_URL='ftp://x' is not an http(s) URL",
        ),
        (
            {"NOTIFY_WEBHOOK_URL": "https://chat.example.com/hook"},
            "NOTIFY_WEBHOOK_SECRET is required",
        ),
        ({"SITE_URL": "registry.example.com"}, "SITE_URL"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
    ],
)
def test_it_stops_start_up_naming_the_bad_notification_setting(env, named):
    result = start_django(**{"NOTIFY_WEBHOOK_SECRET": "", **env})

    assert result.returncode != 0
    assert named in result.stderr
