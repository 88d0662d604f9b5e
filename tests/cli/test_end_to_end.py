"""The CLI as a subprocess against the live server, end to end: validate -> register ->
request -> two reviewers approve in the dashboard -> wait returns 0. The registry is a real
MLflow (SQLite store); the server runs the workers' tasks in-process."""

from __future__ import annotations

import pytest
from django.test import Client

from registry_ui.web.api import tokens
from registry_ui.web.models import ApiToken, PromotionRequest, TemplateVersion

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


def template_file(name: str, version: str, text: str) -> str:
    return (
        f"name: {name}\nversion: {version}\ntemplate: {text!r}\nmetadata:\n  author: alice\n"
        "tests:\n  - name: greets\n    values: {who: Ann}\n    contains: Ann\n"
    )


def test_validate_register_request_approve_wait(
    cli, live_server, tmp_path, unique_name, root, ci_bot, alice, bob, carol, settings
):
    # alice: the template's metadata author, an author's account (issue 16, finding 8).
    settings.APPROVALS_REQUIRED = {**settings.APPROVALS_REQUIRED, "staging": 2}
    name = unique_name()
    (tmp_path / "greeting.yaml").write_text(template_file(name, "1.0.0", "Hi {who}"))
    _, raw = tokens.token_create(
        root, name="ci", scopes=tokens.SERVICE_SCOPES, kind="service", account="ci-bot"
    )
    env = {"REGISTRY_UI_URL": live_server.url, "REGISTRY_UI_TOKEN": raw}
    path = str(tmp_path)

    assert cli("validate", path, isolated=True).code == 0
    assert cli("test", path, isolated=True).code == 0
    registered = cli("register", path, "--wait", "--timeout", "120", env=env)
    assert registered.code == 0, registered
    assert "1 registered, 0 failed" in registered.out
    assert TemplateVersion.objects.filter(template__name=name, version="1.0.0").exists()
    again = cli("register", path, env=env)
    assert again.code == 0 and "registered already" in again.out, again

    filed = cli(
        "--json", "request", "--files", path, "--to", "staging", "--justification", "ready", env=env
    )
    assert filed.code == 0, filed
    request_id = filed.json()[0]["request"]["id"]
    refused = cli("status", str(request_id), env={**env, "REGISTRY_UI_TOKEN": "rui_api_bad"})
    assert refused.code == 3 and "not known" in refused.err

    waiting = cli("wait", str(request_id), "--timeout", "0", "--interval", "0.1", env=env)
    assert waiting.code == 1 and "still open" in waiting.out, waiting
    for reviewer in (bob, carol):  # in the dashboard
        client = Client()
        client.force_login(reviewer)
        response = client.post(f"/requests/{request_id}/approve", {"comment": "fine"})
        assert response.status_code in (302, 303), response.content[:400]

    done = cli("wait", str(request_id), "--timeout", "60", "--interval", "0.2", env=env)
    assert done.code == 0, done
    assert "done" in done.out and "approvals 2/2" in done.out
    assert PromotionRequest.objects.get(pk=request_id).status == "done"
    assert TemplateVersion.objects.get(template__name=name, version="1.0.0").stage == "staging"
    assert ApiToken.objects.get().last_used_at is not None
    rerun = cli("request", "--files", path, "--to", "staging", "--justification", "x", env=env)
    assert rerun.code == 0 and "already staging" in rerun.out, rerun


def test_a_service_token_cannot_approve_and_the_cli_says_refused(
    cli, live_server, tmp_path, unique_name, root, ci_bot, erin, settings
):
    from tests.support import mirror_rows

    row = mirror_rows.template("cli/approve")
    mirror_rows.version(row, "1.0.0")
    from registry_ui.web.reviews import services as reviews

    request = reviews.file_request(
        erin, template_name="cli/approve", version="1.0.0", target="staging", justification="j"
    )
    _, raw = tokens.token_create(
        root, name="ci", scopes=tokens.SERVICE_SCOPES, kind="service", account="ci-bot"
    )
    env = {"REGISTRY_UI_URL": live_server.url, "REGISTRY_UI_TOKEN": raw}

    status = cli("--json", "status", str(request.pk), env=env)
    dry = cli(
        "request",
        "cli/approve",
        "1.0.0",
        "--to",
        "production",
        "--justification",
        "x",
        "--dry-run",
        env=env,
    )

    assert status.code == 0 and status.json()["status"] == "open"
    assert dry.code == 3 and "refused" in dry.out, dry


def test_diff_markdown_export_and_pull(cli, live_server, tmp_path, root, alice):
    from tests.support import mirror_rows

    row = mirror_rows.template("cli/greeting")
    mirror_rows.version(row, "1.0.0", "Hi {who}", stage="production", was_production=True)
    mirror_rows.version(row, "1.1.0", "Hi {who} from {place}")
    _, raw = tokens.token_create(alice, name="laptop", scopes=["read"])
    env = {"REGISTRY_UI_URL": live_server.url, "REGISTRY_UI_TOKEN": raw}
    work = tmp_path / "files"
    work.mkdir()
    (work / "g.yaml").write_text(
        "name: cli/greeting\nversion: 2.0.0\ntemplate: 'Hello {name}'\nmetadata:\n"
        "  author: alice\ntests:\n  - name: greets\n    values: {name: Ann}\n"
        "    contains: Bob\n"
    )

    versions = cli("diff", "cli/greeting", "1.0.0", "1.1.0", env=env)
    markdown = cli("diff", str(work), "--markdown", env=env)
    exported = cli("export", "cli/greeting", "--stage", "production", env=env)
    pulled = cli("pull", str(tmp_path / "pulled"), "--folder", "cli", "--stage", "latest", env=env)

    assert versions.code == 0 and "variables added: place" in versions.out, versions
    assert markdown.code == 1, markdown  # a failing case
    assert "| `cli/greeting` | 1.0.0 | 2.0.0 | `name` | `who` | **yes** | major" in markdown.out
    assert "#### Failing test cases" in markdown.out
    assert exported.code == 0 and "version: 1.0.0" in exported.out
    assert "template: Hi {who}" in exported.out
    assert pulled.code == 0, pulled
    written = (tmp_path / "pulled" / "cli" / "greeting.yaml").read_text()
    assert "version: 1.1.0" in written
    checked = cli(
        "validate",
        str(tmp_path / "pulled"),
        isolated=True,
        env={"REGISTRY_UI_REQUIRED_METADATA": "none"},
    )
    assert checked.code == 0, checked


def test_release_plans_then_files_one_release_and_status_shows_its_moves(
    cli, live_server, root, ci_bot, erin
):
    from tests.support import mirror_rows

    greeting = mirror_rows.template("cli/greeting")
    mirror_rows.version(greeting, "1.0.0", stage="production", was_production=True)
    mirror_rows.version(greeting, "1.1.0", stage="staging")
    mirror_rows.version(greeting, "1.2.0", stage="dev")
    farewell = mirror_rows.template("cli/farewell")
    mirror_rows.version(farewell, "0.1.0", stage="dev")
    _, raw = tokens.token_create(
        root, name="ci", scopes=tokens.SERVICE_SCOPES, kind="service", account="ci-bot"
    )
    env = {"REGISTRY_UI_URL": live_server.url, "REGISTRY_UI_TOKEN": raw}
    moves = ["--item", "cli/greeting", "1.1.0", "production", "--item", "cli/farewell", "0.1.0"]

    plan = cli("release", *moves, "staging", "--dry-run", env=env)
    skipping = cli("release", "--item", "cli/greeting", "1.2.0", "production", "--dry-run", env=env)
    unsaid = cli("release", *moves, "staging", env=env)
    filed = cli("--json", "release", *moves, "staging", "--justification", "launch", env=env)

    assert plan.code == 0, plan
    assert "cli/greeting 1.1.0: staging -> production, replaces 1.0.0" in plan.out
    assert "nothing was filed" in plan.out
    assert skipping.code == 3 and "problem:" in skipping.out, skipping
    assert unsaid.code == 2 and "--justification" in unsaid.err
    assert filed.code == 0, filed
    release = filed.json()["request"]
    assert release["kind"] == "release" and len(release["items"]) == 2
    assert PromotionRequest.objects.filter(release_id=release["id"]).count() == 2
    status = cli("status", str(release["id"]), env=env)
    assert status.code == 0, status
    assert f"release #{release['id']} (cli/greeting 1.1.0 -> production, " in status.out
    assert "open; approvals 0/2" in status.out
