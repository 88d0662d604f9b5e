import pytest
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.core.management import call_command

from registry_ui import prompt_model
from registry_ui.core.stages import ModelStage
from registry_ui.web.management import outbox as development_mail
from registry_ui.web.management.commands import load_demo_data
from registry_ui.web.models import (
    AuditEvent,
    NativeAliasRequest,
    NativePrompt,
    PromotionRequest,
    TemplateFlag,
    TemplateVersion,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_registry(tmp_path, mlflow_sqlite_uri, monkeypatch):
    monkeypatch.setattr(load_demo_data, "CREDENTIALS_FILE", tmp_path / "demo-credentials.txt")
    prompt_model.configure_mlflow_with_registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)


def test_it_loads_templates_in_every_stage_and_users_whose_passwords_it_prints(
    fresh_registry, capsys
):
    call_command("load_demo_data")

    printed = capsys.readouterr().out
    versions = prompt_model.get_registry().gateway.all_versions()
    stages = {record.stage for records in versions.values() for record in records}
    assert stages == set(ModelStage)
    assert "persona/entrepreneur/hook-generator" in versions
    alice_line = next(line for line in printed.splitlines() if line.strip().startswith("alice"))
    password = alice_line.split()[1]
    assert User.objects.get(username="alice").check_password(password)
    assert password in (fresh_registry / "demo-credentials.txt").read_text()
    roles = {u.username: [g.name for g in u.groups.all()] for u in User.objects.all()}
    assert roles == {
        "alice": ["authors"],
        "bob": ["reviewers"],
        "carol": ["reviewers"],
        "dave": ["analysts"],
        "admin": ["admins"],
    }
    mirrored = TemplateVersion.objects.get(
        template__name="persona/entrepreneur/hook-generator", version="1.0.0"
    )
    assert (mirrored.stage, mirrored.was_production) == ("archived", True)
    # Requests by alice wait for both reviewers, so the inbox has something to show.
    waiting = PromotionRequest.objects.filter(status="open", requester__username="alice")
    assert sorted(waiting.values_list("version__version", "target_stage")) == [
        ("1.2.0", "production"),
        ("2.0.0", "staging"),
    ]
    assert "waiting for bob and carol: #" in printed
    assert TemplateVersion.objects.count() == sum(len(v) for v in versions.values())


def test_the_history_is_made_through_requests_and_approvals(fresh_registry, capsys, settings):
    settings.EMAIL_BACKEND = "registry_ui.web.management.outbox.EmailBackend"
    settings.EMAIL_FILE_PATH = str(fresh_registry / "mail" / "outbox.txt")

    call_command("load_demo_data")

    printed = capsys.readouterr().out
    # Nothing greets a newcomer with "changed outside the dashboard".
    assert not TemplateFlag.objects.exists()
    # Versions are registered from code (PromptModel, as authors do); every move is reviewed.
    outside = AuditEvent.objects.filter(source=AuditEvent.Source.EXTERNAL)
    assert set(outside.values_list("action", flat=True)) == {"version.registered"}
    done = PromotionRequest.objects.filter(status="done")
    assert done.count() == 11
    hook = "persona/entrepreneur/hook-generator"
    production = done.filter(target_stage="production", template__name=hook).first()
    assert sorted(production.approvals.values_list("reviewer_username", flat=True)) == [
        "bob",
        "carol",
    ]
    assert "Content-Transfer-Encoding" not in printed  # no MIME on the console


def test_development_mail_goes_to_a_readable_file_with_the_subject_on_one_line(tmp_path, settings):
    settings.EMAIL_BACKEND = "registry_ui.web.management.outbox.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail" / "outbox.txt")
    subject = "[registry_ui] Review needed: #1 persona/entrepreneur/hook-generator 1.0.0 -> staging"

    send_mail(subject, "Review it: http://127.0.0.1:8000/requests/1/", None, ["bob@example.com"])
    send_mail("Done", "It is done.", None, ["alice@example.com", "carol@example.com"])

    outbox = (tmp_path / "mail" / "outbox.txt").read_text()
    assert f"To: bob@example.com\nFrom: registry_ui@localhost\nSubject: {subject}\n\n" in outbox
    assert "To: alice@example.com, carol@example.com\n" in outbox
    assert "MIME" not in outbox
    assert development_mail.count() == 2


def test_a_second_run_changes_nothing(fresh_registry, capsys):
    call_command("load_demo_data")
    before = prompt_model.get_registry().gateway.all_versions()
    capsys.readouterr()

    call_command("load_demo_data")

    assert "already loaded" in capsys.readouterr().out
    assert prompt_model.get_registry().gateway.all_versions() == before


def test_the_demo_templates_carry_tags_the_list_filters_by(fresh_registry, client, capsys):
    call_command("load_demo_data")
    client.force_login(User.objects.get(username="bob"))

    page = client.get("/", {"tag": "hooks"}).content.decode()

    assert "persona/entrepreneur/hook-generator" in page
    assert "viral-hook-generator" in page
    assert "story-narrator" not in page
    assert "user-message" not in page


def test_the_demo_adopts_a_native_prompt_and_alice_asks_to_move_its_staging(
    fresh_registry, client, capsys
):
    call_command("load_demo_data")
    printed = capsys.readouterr().out

    prompt = NativePrompt.objects.get(name="demo-support-reply")
    assert prompt.governed and prompt.adopted_by == "admin"
    assert prompt.governed_aliases == {"production": "1"} and not prompt.outside_alias_change
    assert [(v.semver, v.kind) for v in prompt.versions.order_by("number")] == [
        ("1.0.0", "text"),
        ("1.1.0", "chat"),
    ]
    [request] = NativeAliasRequest.objects.filter(prompt=prompt, state="open")
    assert (request.alias, request.semver, request.requested_by) == ("staging", "1.1.0", "alice")
    assert "native MLflow prompt demo-support-reply" in printed
    assert "staging to 1.1.0" in printed
    client.force_login(User.objects.get(username="bob"))
    page = client.get("/native-prompts/demo-support-reply").content.decode()
    assert "names the company" in page and "gpt-4o-mini" in page

    # A forced second run registers no version again and files no second request.
    call_command("load_demo_data", "--force")
    assert prompt.versions.count() == 2
    assert len(prompt_model.get_registry().gateway.native_versions("demo-support-reply")) == 2
    assert NativeAliasRequest.objects.filter(prompt=prompt).count() == 1
