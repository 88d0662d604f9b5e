"""`register_templates --stage` and `promote_templates` file requests; they never promote."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from registry_ui.prompt_model import get_registry
from registry_ui.web.auth.roles import AUTHORS
from registry_ui.web.models import PromotionRequest
from registry_ui.web.reviews import services as reviews
from tests.support.users import member
from tests.web.operations.test_register_templates_command import write

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.fixture
def ci_user(db, alice):
    """The account CI files requests as: an author (alice, the files' author, exists)."""
    return member("ci-bot", AUTHORS)


def stages(name):
    return {r.version: r.stage.value for r in get_registry().gateway.list_versions(name)}


def test_register_with_stage_files_requests_and_a_rerun_files_nothing_new(
    tmp_path, unique_name, capsys, ci_user
):
    name = unique_name()
    write(tmp_path, name, "1.0.0", "Hi {who}")

    call_command("register_templates", str(tmp_path), "--stage", "staging", "--user", "ci-bot")
    first = capsys.readouterr().out
    call_command("register_templates", str(tmp_path), "--stage", "staging", "--user", "ci-bot")
    second = capsys.readouterr().out

    request = PromotionRequest.objects.get()
    assert (request.status, request.target_stage, request.requester) == ("open", "staging", ci_user)
    assert f"{name} 1.0.0 -> staging: request #{request.pk} filed, 1 approval(s) needed" in first
    assert "1 promotion request(s) to staging filed, 0 already open, 0 refused" in first
    assert f"request #{request.pk} is open" in second
    assert "0 promotion request(s) to staging filed, 1 already open" in second
    assert stages(name) == {"1.0.0": "dev"}  # review is never bypassed


def test_register_with_stage_refuses_an_account_that_cannot_request(tmp_path, unique_name, dave):
    name = unique_name()
    write(tmp_path, name, "1.0.0", "Hi {who}")
    with pytest.raises(CommandError, match="register_version permission"):
        call_command("register_templates", str(tmp_path), "--stage", "staging", "--user", "dave")
    with pytest.raises(CommandError, match="no such user"):
        call_command("register_templates", str(tmp_path), "--stage", "staging", "--user", "x")
    with pytest.raises(CommandError, match="--user is required"):
        call_command("register_templates", str(tmp_path), "--stage", "staging")
    assert stages(name) == {}  # refused before anything was registered


def test_promote_templates_requests_the_staging_versions_for_review(
    tmp_path, unique_name, capsys, ci_user, bob
):
    a, b = unique_name("a"), unique_name("b")
    write(tmp_path, a, "1.0.0", "Hi {who}")
    write(tmp_path, b, "1.0.0", "Hey {who}")
    call_command("register_templates", str(tmp_path), "--stage", "staging", "--user", "ci-bot")
    reviews.approve(bob, PromotionRequest.objects.get(template__name=a).pk)
    capsys.readouterr()

    call_command("promote_templates", "--to", "production", "--user", "ci-bot", "--reason", "r", a)
    out = capsys.readouterr().out

    request = PromotionRequest.objects.get(template__name=a, target_stage="production")
    assert (request.status, request.required_approvals, request.justification) == ("open", 2, "r")
    assert "1 request(s) filed, 0 already open, 0 refused, 0 without a candidate" in out
    assert stages(a) == {"1.0.0": "staging"}

    with pytest.raises(CommandError, match="1 without a candidate"):
        call_command("promote_templates", "--to", "production", "--user", "ci-bot", b)
    assert "no staging version to promote" in capsys.readouterr().out
