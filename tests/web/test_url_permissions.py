"""Who may change what, URL by URL: every state-changing URL of the URLConf against every role.

The services authorise every change (registry_ui.web.approvals); these tests go through the
URLs, so a view that forgot to call its service, or a new POST URL without a row in
EXPECTED, fails here. They run on mirror rows only: an approved request becomes an
operation sent after commit, and the test's transaction never commits, so MLflow is never
written.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from registry_ui.web.api import tokens as api_tokens
from registry_ui.web.models import (
    ApiToken,
    Approval,
    AuditEvent,
    CheckRun,
    Experiment,
    Operation,
    OutcomeEvent,
    PromotionRequest,
    RequestComment,
    Template,
    TemplateFlag,
    TemplateVersion,
)
from registry_ui.web.reviews import services as reviews

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "author", "reviewer", "analyst", "admin", "requester"]
ALLOWED = "allowed"
SIGN_IN = "sent to sign in"
FORBIDDEN = "403"
REFUSED = "400"  # the service's PolicyError, shown in the form
UNAUTHENTICATED = "401"  # no valid bearer token (the outcome API signs in no one)
# Views that are not ours to test here: the admin site (it has its own permission
# system), static files and the sign-in page (tests/web/test_security.py covers both).
SKIPPED_NAMESPACES = {"admin", "api"}  # the API: tests/web/api, every endpoint x scope
SKIPPED_NAMES = {"login"}
RITAS = "rita's laptop"  # the requester's API token


# --- the cast and the world they act on ----------------------------------------------------


@pytest.fixture
def cast(alice, bob, dave, root, rita) -> dict[str, User | None]:
    """The shared cast (tests/web/conftest.py) by role."""
    return {
        "anonymous": None,
        "author": alice,
        "reviewer": bob,
        "analyst": dave,
        "admin": root,
        # Files the requests below, and is a reviewer too: four eyes still stop her.
        "requester": rita,
    }


def version(template: Template, number: str, stage: str = "dev", **extra) -> TemplateVersion:
    major, minor, patch = (int(n) for n in number.split("."))
    return TemplateVersion.objects.create(
        template=template,
        version=number,
        major=major,
        minor=minor,
        patch=patch,
        stage=stage,
        text=f"Hi {{who}} ({number})",
        variables=["who"],
        metadata={"author": "writer"},
        author="writer",  # wrote every version: neither a role below nor the requester
        content_sha256=f"{number:0>64}"[-64:],
        mlflow_version=str(patch + 1),
        **extra,
    )


def template(name: str) -> Template:
    return Template.objects.create(name=name, registered_model_name=name.replace("/", "."))


@dataclass
class World:
    request: PromotionRequest  # rita's open request: 1.0.0 of "t/open" to staging
    promote: str  # a dev version another request may take to staging
    rollback: str  # a template whose archived 1.0.0 held production before
    release: str  # a template whose dev 1.0.0 a release may take to staging
    experiment: str = "exp-open"  # a running experiment on "t/open" (1.0.0 against 1.0.1)


@pytest.fixture
def world(cast) -> World:
    opened = template("t/open")
    version(opened, "1.0.0")
    version(opened, "1.0.1")
    rolled = template("t/rolled")
    version(rolled, "1.0.0", "archived", was_production=True)
    version(rolled, "1.0.1", "production", was_production=True)
    released = template("t/released")
    version(released, "1.0.0")
    filed = reviews.file_request(
        cast["requester"],
        template_name="t/open",
        version="1.0.0",
        target="staging",
        justification="ready for staging",
    )
    from registry_ui.web.experiments.definitions import VariantLine, create_experiment

    create_experiment(
        actor="dave",
        template_name="t/open",
        key="exp-open",
        title="open",
        variants=[VariantLine("control", "1.0.0", 1), VariantLine("treatment", "1.0.1", 1)],
        metric="engagement",
        kind="rate",
        min_samples=100,
        start_at=timezone.now(),
        stop_at=timezone.now() + timedelta(days=14),
    )
    TemplateFlag.objects.create(
        template=opened, kind="outside_change", message="production moved in MLflow"
    )
    native_prompt(cast["requester"])
    api_tokens.token_create(cast["requester"], name=RITAS, scopes=["read"])
    return World(filed, "t/open", "t/rolled", "t/released")


def native_prompt(requester) -> None:
    """A governed native prompt (production on version 1) with an open request of the
    requester's to move its staging alias to version 2 (mirror rows only)."""
    from registry_ui.web.models import NativeAliasRequest, NativePrompt

    prompt = NativePrompt.objects.create(
        name="np-open", governed=True, governed_aliases={"production": "1"}, aliases={}
    )
    for number, text in ((1, "Hi {{ who }}"), (2, "Hello {{ who }}")):
        prompt.versions.create(
            number=number,
            semver=f"1.0.{number - 1}",
            kind="text",
            template=text,
            variables=["who"],
            tags={"registry_ui.test_cases": '[{"name": "greets", "values": {"who": "Al"}}]'},
        )
    NativeAliasRequest.objects.create(
        prompt=prompt, number=2, semver="1.0.1", alias="staging", requested_by=requester.username
    )


def native_check_runs(**filters):
    from registry_ui.web.models import NativeCheckRun

    return NativeCheckRun.objects.filter(**filters)


def native_request(**filters):
    from registry_ui.web.models import NativeAliasRequest

    return NativeAliasRequest.objects.filter(**filters)


# --- the expectation table -----------------------------------------------------------------


@dataclass
class Row:
    """One URL: how to call it, and what each role gets."""

    method: str
    path: Callable[[World], str]
    data: Callable[[World], dict] = field(default=lambda w: {})
    expect: dict[str, str] = field(default_factory=dict)
    # Did the allowed call do what the service says? (user, world, response) -> bool
    done: Callable[[User, World, object], bool] = field(default=lambda u, w, r: True)
    message: str = ""  # what a REFUSED answer says
    page: Callable[[World], str] = field(default=lambda w: "/requests/")  # holds its form


def by_role(anonymous, author, reviewer, analyst, admin, requester) -> dict[str, str]:
    return dict(zip(ROLES, [anonymous, author, reviewer, analyst, admin, requester], strict=True))


def detail(w: World) -> str:
    return f"/requests/{w.request.pk}/"


def status_of(w: World) -> str:
    return PromotionRequest.objects.get(pk=w.request.pk).status


EXPECTED: dict[str, Row] = {
    "request_create": Row(
        "post",
        lambda w: "/requests/new",
        lambda w: {
            "template": w.promote,
            "version": "1.0.1",
            "target": "staging",
            "justification": "j",
        },
        by_role(SIGN_IN, ALLOWED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: PromotionRequest.objects.filter(
            requester=u, version__version="1.0.1", status="open"
        ).exists(),
        page=lambda w: "/requests/new",
    ),
    "request_approve": Row(
        "post",
        lambda w: f"/requests/{w.request.pk}/approve",
        lambda w: {"comment": "fine"},
        by_role(SIGN_IN, FORBIDDEN, ALLOWED, FORBIDDEN, ALLOWED, REFUSED),
        # One approval of one required: the request becomes an operation.
        lambda u, w, r: (
            Approval.objects.filter(request=w.request, reviewer=u).exists()
            and status_of(w) == "executing"
            and Operation.objects.filter(request=w.request).exists()
        ),
        message="four-eyes rule",
        page=detail,
    ),
    "request_reject": Row(
        "post",
        lambda w: f"/requests/{w.request.pk}/reject",
        lambda w: {"comment": "wrong tone"},
        by_role(SIGN_IN, FORBIDDEN, ALLOWED, FORBIDDEN, ALLOWED, REFUSED),
        lambda u, w, r: status_of(w) == "rejected",
        message="withdraw it instead of rejecting",
        page=detail,
    ),
    "request_comment": Row(
        "post",
        lambda w: f"/requests/{w.request.pk}/comment",
        lambda w: {"text": "one question"},
        by_role(SIGN_IN, ALLOWED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: RequestComment.objects.filter(request=w.request, author=u).exists(),
        page=detail,
    ),
    "request_withdraw": Row(
        "post",
        lambda w: f"/requests/{w.request.pk}/withdraw",
        lambda w: {},
        by_role(SIGN_IN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: status_of(w) == "withdrawn",
        page=detail,
    ),
    "rollback_create": Row(
        "post",
        lambda w: "/rollback/new",
        lambda w: {"template": w.rollback, "version": "1.0.0", "reason": "1.0.1 misfires"},
        by_role(SIGN_IN, FORBIDDEN, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: PromotionRequest.objects.filter(requester=u, kind="rollback").exists(),
        page=lambda w: "/rollback/new",
    ),
    "release_create": Row(
        "post",
        lambda w: "/releases/new",
        lambda w: {
            "lines": f"{w.release} 1.0.0 staging",
            "justification": "spring",
            "action": "file",
        },
        by_role(SIGN_IN, ALLOWED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: PromotionRequest.objects.filter(
            requester=u, kind="release", items__template__name=w.release
        ).exists(),
        page=lambda w: "/releases/new",
    ),
    # Authors and reviewers run a version's test cases again (checks.RUN_PERMISSION).
    "version_run_checks": Row(
        "post",
        lambda w: f"/versions/{w.request.version_id}/run-checks",
        lambda w: {"next": detail(w)},
        by_role(SIGN_IN, ALLOWED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: CheckRun.objects.filter(
            version_id=w.request.version_id, trigger="on_demand", actor=u.username
        ).exists(),
        page=detail,
    ),
    "logout": Row(
        "post",
        lambda w: "/accounts/logout/",
        expect=by_role(SIGN_IN, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        done=lambda u, w, r: r.wsgi_request.user.is_anonymous,
    ),
    # Anyone signed in changes their own password; the cast has none, so the old one is
    # wrong: the form says so, for the signed-in user (tests/web/auth/test_password_change.py).
    "password_change": Row(
        "post",
        lambda w: "/accounts/password/",
        lambda w: {
            "old_password": "not the password",
            "new_password1": "a long passphrase nobody guesses",
            "new_password2": "a long passphrase nobody guesses",
        },
        expect=by_role(SIGN_IN, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        done=lambda u, w, r: "Your old password was entered incorrectly" in r.text,
        page=lambda w: "/accounts/password/",
    ),
    # Open to anyone, authenticated by MLflow's HMAC signature: none here, so refused.
    "mlflow_webhook": Row(
        "post",
        lambda w: "/webhooks/mlflow",
        lambda w: json.dumps({"event": "model_version.created", "data": {"name": "t.open"}}),
        by_role(REFUSED, REFUSED, REFUSED, REFUSED, REFUSED, REFUSED),
        message="missing X-MLflow-Delivery-Id",
    ),
    # Experiments: analysts (define_experiment) define and stop them.
    "experiment_create": Row(
        "post",
        lambda w: "/experiments/new",
        lambda w: {
            "template": w.rollback,
            "key": "exp-new",
            "variants": "control 1.0.1 50\ntreatment 1.0.0 50",
            "metric": "engagement",
            "kind": "rate",
            "min_samples": "100",
            "start_at": "2030-01-01 00:00",
            "stop_at": "2030-01-15 00:00",
        },
        by_role(SIGN_IN, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, FORBIDDEN),
        lambda u, w, r: Experiment.objects.filter(key="exp-new", created_by=u).exists(),
        page=lambda w: "/experiments/new",
    ),
    "experiment_stop": Row(
        "post",
        lambda w: f"/experiments/{w.experiment}/stop",
        lambda w: {"reason": "enough evidence"},
        by_role(SIGN_IN, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, FORBIDDEN),
        lambda u, w, r: Experiment.objects.get(key=w.experiment).status == "stopped",
        page=lambda w: f"/experiments/{w.experiment}/",
    ),
    # Open to anyone, authenticated by a service's bearer token: none here, so 401.
    "outcomes_api": Row(
        "post",
        lambda w: "/api/v1/outcomes",
        lambda w: json.dumps({"events": []}),
        by_role(*[UNAUTHENTICATED] * 6),
    ),
    # Dashboard: authors and reviewers save a version's preview values as a sample.
    "sample_save": Row(
        "post",
        lambda w: f"/templates/{w.promote}/-/versions/1.0.1/samples",
        lambda w: {"sample_name": "example", "v.who": "Ann"},
        by_role(SIGN_IN, ALLOWED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: AuditEvent.objects.filter(action="sample.saved", actor=u.username).exists(),
        page=lambda w: f"/templates/{w.promote}/-/versions/1.0.1",
    ),
    # The editor's live check: a POST (the text may be long) that changes nothing.
    "version_validate": Row(
        "post",
        lambda w: "/versions/validate",
        lambda w: {"name": w.promote, "version": "1.0.2", "template": "Hi {who}", "metadata": "{}"},
        by_role(SIGN_IN, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        lambda u, w, r: "Suggested version: <strong>1.0.2</strong>" in r.text,
        page=lambda w: "/versions/new",
    ),
    # Authors file a one-version batch (batch_register reads MLflow once; nothing is written,
    # the batch's operations are sent after a commit that never comes).
    "version_create": Row(
        "post",
        lambda w: "/versions/new",
        lambda w: {
            "name": "t/filed",
            "version": "1.0.0",
            "template": "Hi {who}",
            "metadata": "{}",  # no metadata author: the one filing is its author
        },
        by_role(SIGN_IN, ALLOWED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: Operation.objects.filter(
            template_name="t/filed", batch__actor=u.username
        ).exists(),
        page=lambda w: "/versions/new",
    ),
    # Reviewers mark a template's flag as checked.
    "flag_resolve": Row(
        "post",
        lambda w: f"/flags/{TemplateFlag.objects.get().pk}/resolve",
        expect=by_role(SIGN_IN, FORBIDDEN, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        done=lambda u, w, r: TemplateFlag.objects.get().resolved_by == u.username,
        page=lambda w: f"/templates/{w.promote}",
    ),
    # Authors and reviewers retry failed operations (none fails here: nothing to retry).
    "operation_retry": Row(
        "post",
        lambda w: "/operations/retry",
        lambda w: {"operation": "00000000-0000-0000-0000-000000000000"},
        by_role(SIGN_IN, ALLOWED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: r["Location"].endswith("retried=0"),
        page=lambda w: "/operations/",
    ),
    # Authors ask to move a governed alias of a native prompt (MLflow's Prompt Registry).
    "native_request_create": Row(
        "post",
        lambda w: "/native-prompts/np-open/requests",
        lambda w: {"version": "2", "alias": "production", "reason": "ready"},
        by_role(SIGN_IN, ALLOWED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: native_request(alias="production", requested_by=u.username).exists(),
        page=lambda w: "/native-prompts/np-open",
    ),
    # Authors and reviewers run a native prompt version's test cases again.
    "native_checks_run": Row(
        "post",
        lambda w: "/native-prompts/np-open/checks",
        lambda w: {"version": "2"},
        by_role(SIGN_IN, ALLOWED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        lambda u, w, r: native_check_runs(actor=u.username, trigger="on_demand").exists(),
        page=lambda w: "/native-prompts/np-open",
    ),
    # Reviewers approve it; never the requester (four eyes).
    "native_request_approve": Row(
        "post",
        lambda w: f"/native-alias-requests/{native_request(alias='staging').get().pk}/approve",
        expect=by_role(SIGN_IN, FORBIDDEN, ALLOWED, FORBIDDEN, ALLOWED, REFUSED),
        done=lambda u, w, r: u.username in native_request(alias="staging").get().approvals,
        message="four eyes",
        page=lambda w: "/native-prompts/np-open",
    ),
    # Anyone signed in makes personal API tokens (shown once on the page).
    "api_tokens": Row(
        "post",
        lambda w: "/api/tokens/",
        lambda w: {"name": "ci", "scopes": ["read"], "days": "30"},
        by_role(SIGN_IN, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        lambda u, w, r: ApiToken.objects.filter(user=u, name="ci").exists(),
        page=lambda w: "/api/tokens/",
    ),
    # A token is revoked by its owner (rita, the requester) or an administrator.
    "api_token_revoke": Row(
        "post",
        lambda w: f"/api/tokens/{ApiToken.objects.get(name=RITAS).pk}/revoke",
        expect=by_role(SIGN_IN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED),
        done=lambda u, w, r: ApiToken.objects.get(name=RITAS).revoked_at is not None,
        page=lambda w: "/api/tokens/",
    ),
    # A read, but of the whole audit trail: only holders of export_auditevent.
    "audit_export": Row(
        "get",
        lambda w: "/audit/export.csv",
        expect=by_role(SIGN_IN, FORBIDDEN, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED),
        done=lambda u, w, r: r["Content-Type"].startswith("text/csv"),
    ),
}
CASES = [(name, role) for name in EXPECTED for role in ROLES]


# --- the URLConf, walked -------------------------------------------------------------------


def url_patterns(resolver: URLResolver | None = None):
    """Every URL pattern of the URLConf, outside the skipped namespaces."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace not in SKIPPED_NAMESPACES:
                yield from url_patterns(entry)
        elif isinstance(entry, URLPattern) and not str(entry.pattern).startswith("static/"):
            yield entry


def allowed_methods(view) -> set[str] | None:
    """The methods a view answers; None when nothing restricts them (POST included)."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
    while view is not None:  # through @login_required, @never_cache, ... to @require_*
        methods = inspect.getclosurevars(view).nonlocals.get("request_method_list")
        if methods is not None:
            return set(methods)
        view = getattr(view, "__wrapped__", None)
    return None


def accepts_post(pattern: URLPattern) -> bool:
    methods = allowed_methods(pattern.callback)
    return methods is None or "POST" in methods


def test_every_url_that_accepts_post_has_a_row():
    posting = {p.name for p in url_patterns() if accepts_post(p) and p.name not in SKIPPED_NAMES}

    assert None not in posting, "name every URL pattern that accepts POST"
    assert posting == {name for name, row in EXPECTED.items() if row.method == "post"}


def test_the_method_walk_reads_the_decorators():
    by_name = {p.name: allowed_methods(p.callback) for p in url_patterns()}

    assert by_name["request_approve"] == {"POST"}
    assert by_name["request_create"] == {"GET", "POST"}
    assert by_name["template_list"] == by_name["audit_export"] == {"GET"}
    assert by_name["logout"] == {"POST", "OPTIONS"}


# --- every URL x every role ----------------------------------------------------------------


def snapshot() -> dict:
    """Everything a state change could touch."""
    return {
        "requests": sorted(PromotionRequest.objects.values_list("id", "status")),
        "approvals": Approval.objects.count(),
        "comments": RequestComment.objects.count(),
        "operations": Operation.objects.count(),
        "templates": Template.objects.count(),
        "versions": sorted(TemplateVersion.objects.values_list("id", "stage")),
        "audit_events": AuditEvent.objects.count(),
        "flags": sorted(TemplateFlag.objects.values_list("id", "resolved_by")),
        "experiments": sorted(Experiment.objects.values_list("key", "status")),
        "outcomes": OutcomeEvent.objects.count(),
    }


def signed_in(role: str, cast, client_class=Client, **kwargs) -> Client:
    client = client_class(**kwargs)
    if cast[role] is not None:
        client.force_login(cast[role])
    return client


def call(client: Client, row: Row, world: World, *, token: str | None = None, **kwargs):
    data = row.data(world)
    if token is not None:
        data = {**data, "csrfmiddlewaretoken": token}
    if isinstance(data, str):
        kwargs.setdefault("content_type", "application/json")
    return getattr(client, row.method)(row.path(world), data, **kwargs)


@pytest.mark.parametrize(("name", "role"), CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_each_role_gets_what_the_table_says(name, role, cast, world, settings, monkeypatch):
    settings.MLFLOW_WEBHOOK_SECRET = "s3cret"  # so the signature is what refuses
    synced = []
    from registry_ui.web.prompts.tasks import sync_template

    monkeypatch.setattr(sync_template, "delay", synced.append)
    row, expected = EXPECTED[name], EXPECTED[name].expect[role]
    client = signed_in(role, cast)
    before = snapshot()

    response = call(client, row, world)

    if expected == ALLOWED:
        assert response.status_code in (200, 302, 303), response.content[:500]
        assert row.done(cast[role], world, response)
        return
    assert snapshot() == before, "a refused call changed something"
    assert synced == []
    if expected == SIGN_IN:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif expected == FORBIDDEN:
        assert response.status_code == 403
    elif expected == UNAUTHENTICATED:
        assert response.status_code == 401
    else:
        assert response.status_code == 400
        assert row.message in response.text


def test_the_requester_who_reviews_cannot_approve_her_own_request(cast, world):
    client = signed_in("requester", cast)

    response = client.post(f"/requests/{world.request.pk}/approve", {"comment": "mine"})

    assert response.status_code == 400
    assert "you filed" in response.text and "four-eyes rule" in response.text
    assert not Approval.objects.exists()
    assert status_of(world) == "open"


def test_a_release_dry_run_changes_nothing_for_any_role(cast, world):
    for role in ROLES[1:]:
        client = signed_in(role, cast)
        before = snapshot()

        response = client.post(
            "/releases/new", {"lines": f"{world.release} 1.0.0 staging", "action": "dry_run"}
        )

        assert response.status_code == 200
        assert "1.0.0: dev -&gt; staging" in response.text
        assert snapshot() == before


@pytest.mark.parametrize("name", [n for n, row in EXPECTED.items() if row.method == "post"])
def test_a_get_changes_nothing(name, cast, world):
    client = signed_in("admin", cast)
    before = snapshot()
    pattern = next(p for p in url_patterns() if p.name == name)

    response = client.get(EXPECTED[name].path(world))

    # A form page shows its form; a POST-only URL refuses the method.
    assert response.status_code == (200 if "GET" in allowed_methods(pattern.callback) else 405)
    assert snapshot() == before
    assert response.wsgi_request.user.is_authenticated  # GET never signs out


# --- CSRF, htmx included -------------------------------------------------------------------

CSRF_PROTECTED = [
    n
    for n, row in EXPECTED.items()
    if row.method == "post" and n not in ("mlflow_webhook", "outcomes_api")
]


def token_on(page) -> str:
    """The form's token, as a browser would send it back."""
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, "the page holds no form with a CSRF token"
    return found.group(1)


@pytest.mark.parametrize("name", CSRF_PROTECTED)
def test_a_post_without_the_csrf_token_is_refused_and_with_it_works(name, cast, world):
    row = EXPECTED[name]
    role = next(r for r in ROLES if row.expect[r] == ALLOWED)
    client = signed_in(role, cast, enforce_csrf_checks=True)
    token = token_on(client.get(row.page(world)))
    before = snapshot()

    refused = call(client, row, world)

    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert snapshot() == before
    accepted = call(client, row, world, token=token)
    assert accepted.status_code in (200, 302, 303)
    assert row.done(cast[role], world, accepted)


def test_an_htmx_post_carries_the_token_in_its_header_from_the_body(cast, world):
    client = signed_in("reviewer", cast, enforce_csrf_checks=True)
    page = client.get(f"/requests/{world.request.pk}/")
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page.text).group(1)
    url = f"/requests/{world.request.pk}/comment"

    refused = client.post(url, {"text": "no token"}, headers={"HX-Request": "true"})
    accepted = client.post(
        url, {"text": "with token"}, headers={"HX-Request": "true", "X-CSRFToken": token}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert '<section id="request-review"' in accepted.text and "<html" not in accepted.text
    assert list(RequestComment.objects.values_list("text", flat=True)) == ["with token"]


def test_the_webhook_needs_no_csrf_token_but_a_signature(cast, world, settings):
    settings.MLFLOW_WEBHOOK_SECRET = "s3cret"
    client = Client(enforce_csrf_checks=True)
    before = snapshot()

    response = call(client, EXPECTED["mlflow_webhook"], world)

    assert response.status_code == 400  # the signature, not CSRF, refuses it
    assert "X-MLflow-Signature" in response.json()["error"]
    assert snapshot() == before
