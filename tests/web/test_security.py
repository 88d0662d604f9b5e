"""The security baseline: sign-in everywhere, CSRF, escaping, CSP, and a clean
`manage.py check --deploy` with production settings. Throttled and audited sign-in:
tests/web/auth/test_sign_in.py."""

from __future__ import annotations

import logging
import os
import re
import re._constants as sre  # the stdlib regex parser: to build a path each URL pattern matches
import re._parser as sre_parser
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve

from registry_ui.core.stages import ModelStage
from registry_ui.web.models import Template, TemplateVersion

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent
HOSTILE = "<script>alert(1)</script>{{ request.user }}"

# The only pages an anonymous visitor may open; everything else sends them to sign in.
OPEN_WITHOUT_SIGN_IN = {
    "/healthz": "load balancers and container healthchecks",
    "/webhooks/mlflow": "MLflow's deliveries, authenticated by their HMAC signature",
    "/api/v1/outcomes": "services' outcome events, authenticated by a bearer service token",
    "/accounts/login/": "the sign-in page itself",
    "/admin/login/": "the admin's own sign-in page",
}
STATIC_PREFIX = "/static/"  # WhiteNoise answers before any view (no URL pattern)
# The HTTP API: bearer tokens, never a session (tests/web/api covers every endpoint).
API_PREFIX = "/api/v1/"
# The admin's pages send anonymous visitors to the admin's own sign-in page.
SIGN_IN_PAGES = ("/accounts/login/?next=", "/admin/login/?next=")


# --- every URL needs sign-in -------------------------------------------------------------


def every_url(resolver: URLResolver | None = None, prefix: str = "/"):
    """One path per URL pattern of the URLConf, its converters and groups filled in."""
    for entry in (resolver or get_resolver()).url_patterns:
        path = prefix + example_matching(entry.pattern.regex.pattern)
        if isinstance(entry, URLResolver):
            yield from every_url(entry, path)
        else:
            yield path


def example_matching(regex: str) -> str:
    """A short string `regex` matches: first alternative, one repetition, a plain character."""
    return "".join(_emit(sre_parser.parse(regex)))


def _emit(parsed):
    for op, arg in parsed:
        if op is sre.LITERAL:
            yield chr(arg)
        elif op is sre.SUBPATTERN:
            yield from _emit(arg[-1])
        elif op is sre.BRANCH:
            yield from _emit(arg[1][0])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, body = arg
            for _ in range(max(low, min(1, high))):
                yield from _emit(body)
        elif op in (sre.ANY, sre.NOT_LITERAL, sre.IN):
            yield next(c for c in "a0A_-." if _matches_one(op, arg, c))
        elif op is not sre.AT:  # anchors add nothing
            raise AssertionError(f"teach example_matching about {op}")


def _matches_one(op, arg, char: str) -> bool:
    if op is sre.ANY:
        return True
    if op is sre.NOT_LITERAL:
        return ord(char) != arg
    negate = bool(arg) and arg[0][0] is sre.NEGATE
    categories = {
        sre.CATEGORY_DIGIT: char.isdigit(),
        sre.CATEGORY_NOT_DIGIT: not char.isdigit(),
        sre.CATEGORY_WORD: char.isalnum() or char == "_",
        sre.CATEGORY_NOT_WORD: not (char.isalnum() or char == "_"),
    }
    hit = any(
        (kind is sre.LITERAL and ord(char) == value)
        or (kind is sre.RANGE and value[0] <= ord(char) <= value[1])
        or (kind is sre.CATEGORY and categories.get(value, False))
        for kind, value in arg[negate:]
    )
    return hit != negate


def test_the_url_walk_reaches_every_page_and_the_open_ones():
    urls = set(every_url())

    for url in urls:
        resolve(url)  # each example really is a URL of the URLConf
    assert {"/", "/admin/", "/admin/auth/user/a/change/"} <= urls
    assert set(OPEN_WITHOUT_SIGN_IN) <= urls


def test_every_page_sends_anonymous_visitors_to_sign_in(client):
    walked = sorted(set(every_url()) - set(OPEN_WITHOUT_SIGN_IN))

    answers = {
        url: client.get(url) for url in walked if not url.startswith((STATIC_PREFIX, API_PREFIX))
    }

    open_pages = {
        url: response.status_code
        for url, response in answers.items()
        if response.status_code != 302 or not response["Location"].startswith(SIGN_IN_PAGES)
    }
    assert open_pages == {}, "add @login_required, or to OPEN_WITHOUT_SIGN_IN with a reason"


def test_the_open_pages_answer_without_sign_in(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/login/").status_code == 200
    assert client.get("/webhooks/mlflow").status_code == 405  # POST only, signed
    assert client.get("/api/v1/outcomes").status_code == 405  # POST only, token


# --- CSRF --------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused_and_with_it_works(reader):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reader)
    page = client.get("/")
    token = page.context["csrf_token"]

    refused = client.post("/accounts/logout/")
    accepted = client.post("/accounts/logout/", headers={"X-CSRFToken": str(token)})

    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert client.get("/").status_code == 302  # signed out
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page.text


# --- escaping and the Content-Security-Policy --------------------------------------------


def test_prompt_text_metadata_and_errors_are_escaped(client, reader):
    # Mirror rows with hostile values: real names are validated on registration and can hold
    # no "<", so a registered template could not carry them to the page.
    template = Template.objects.create(name=HOSTILE, registered_model_name="hostile")
    TemplateVersion.objects.create(
        template=template,
        version="1.0.0",
        major=1,
        minor=0,
        patch=0,
        stage=ModelStage.PRODUCTION.value,
        text=HOSTILE,
        metadata={"note": HOSTILE, "tags": [HOSTILE]},
        author=HOSTILE,
        content_sha256="0" * 64,
        mlflow_version="1",
    )
    client.force_login(reader)

    response = client.get("/")

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;{{ request.user }}" in response.text


def test_pages_carry_a_content_security_policy_without_inline_code_or_eval(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]

    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == directives["base-uri"] == "'none'"
    assert "unsafe" not in policy


def test_no_template_has_inline_script_style_or_event_handlers():
    forbidden = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+\s*=|hx-on|\|safe|autoescape off",
        re.IGNORECASE,
    )

    found = {
        str(path.relative_to(ROOT)): forbidden.findall(path.read_text())
        for path in (ROOT / "templates").rglob("*.html")
    }

    assert {path: hits for path, hits in found.items() if hits} == {}
    assert '"includeIndicatorStyles":false' in (ROOT / "templates/base.html").read_text()


# --- caching and browser features -----------------------------------------------------


def test_pages_for_a_signed_in_user_are_never_stored(client, reader, root):
    client.force_login(reader)

    pages = [client.get("/"), client.get("/audit/"), client.get("/accounts/password/")]
    client.force_login(root)
    pages += [client.get("/admin/"), client.get("/audit/export.csv")]

    for page in pages:
        directives = {d.strip() for d in page["Cache-Control"].split(",")}
        assert {"no-store", "private"} <= directives, page.wsgi_request.path


def test_every_response_carries_a_permissions_policy(client, reader):
    anonymous = [client.get("/accounts/login/"), client.get("/healthz"), client.get("/")]
    static = client.get("/static/registry_ui/app.css")  # answered by WhiteNoise
    assert static.status_code == 200
    client.force_login(reader)

    for response in [*anonymous, static, client.get("/")]:
        policy = response["Permissions-Policy"]
        assert "camera=()" in policy and "microphone=()" in policy
        assert "geolocation=()" in policy and "payment=()" in policy


# --- credentials in output --------------------------------------------------------------


def test_log_lines_never_carry_a_password_from_a_url_or_an_option(caplog):
    # The console handler's filter (settings.LOGGING) runs before the record reaches any
    # handler further up, caplog's included.
    logger = logging.getLogger("registry_ui.anywhere")

    with caplog.at_level(logging.WARNING):
        logger.warning("MLflow at %s failed", "http://svc:S3cretPassw0rd@mlflow:5000")
        logger.warning("database refused host=db password=hunter2")

    assert "S3cretPassw0rd" not in caplog.text and "hunter2" not in caplog.text
    assert "MLflow at http://***@mlflow:5000 failed" in caplog.text
    assert "password=***" in caplog.text


# --- production settings -----------------------------------------------------------------


def production(*command: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment.update(
        {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(60)},
        ALLOWED_HOSTS="registry.example.com",
        AUDIT_HMAC_KEY=secrets.token_urlsafe(48),
        AUDIT_HEAD_FILE="/var/lib/registry_ui/audit/heads.jsonl",
    )
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_is_clean_with_production_settings(tmp_path):
    result = production(
        "check", "--deploy", "--fail-level", "WARNING", REGISTRY_UI_VAR_DIR=str(tmp_path)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_production_redirects_to_https_but_healthz_answers_over_http(tmp_path):
    probe = (
        "from django.test import Client; c = Client(); "
        "print(c.get('/healthz').status_code, c.get('/')['Location'], "
        "c.get('/', headers={'X-Forwarded-Proto': 'https'}).status_code)"
    )

    result = production(
        "shell",
        "--no-imports",
        "-c",
        probe,
        REGISTRY_UI_VAR_DIR=str(tmp_path),
        ALLOWED_HOSTS="registry.example.com,testserver",
    )

    assert result.returncode == 0, result.stderr
    # X-Forwarded-Proto is not trusted by default, so / still redirects.
    assert result.stdout.split() == ["200", "https://testserver/", "301"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AUDIT_HMAC_KEY": ""}, "registry_web.E001"),
        ({"AUDIT_HMAC_KEY": "short"}, "registry_web.E002"),
        ({"AUDIT_HEAD_FILE": ""}, "registry_web.W001"),
    ],
)
def test_the_deploy_check_wants_an_audit_key_and_a_head_file(env, named, tmp_path):
    result = production(
        "check", "--deploy", "--fail-level", "WARNING", REGISTRY_UI_VAR_DIR=str(tmp_path), **env
    )

    assert result.returncode != 0
    assert named in result.stdout + result.stderr


def test_the_audit_key_may_not_be_the_secret_key(tmp_path):
    same = secrets.token_urlsafe(48)

    result = production(
        "check", REGISTRY_UI_VAR_DIR=str(tmp_path), SECRET_KEY=same, AUDIT_HMAC_KEY=same
    )

    assert result.returncode != 0
    assert "registry_web.E003" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"LOGIN_FAILURE_LIMIT": "five"},
        {"LOGIN_FAILURE_WINDOW_SECONDS": "0"},
        {"CLIENT_IP_HEADER": "X Real IP"},
        {"SECURE_HSTS_SECONDS": "a year"},
        {"SECURE_SSL_REDIRECT": "maybe"},
        {"TRUST_X_FORWARDED_PROTO": "maybe"},
    ],
)
def test_it_stops_start_up_naming_a_malformed_security_variable(env, tmp_path):
    result = production("check", REGISTRY_UI_VAR_DIR=str(tmp_path), **env)

    assert result.returncode != 0
    assert next(iter(env)) in result.stderr
