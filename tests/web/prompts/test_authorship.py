"""Authorship is bound to accounts (issue 16, finding 8): the registrant, the person a CI
account registered for, and the metadata author resolved to an account may none of them
approve the version. Against a real MLflow (SQLite store); the worker runs in-process."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from registry_ui.core.policy import PolicyError
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web import display
from registry_ui.web.auth.roles import AUTHORS, CI, REVIEWERS
from registry_ui.web.models import AuditEvent, Batch, PromotionRequest, TemplateVersion
from registry_ui.web.prompts import drafts
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import services as reviews
from tests.support.users import member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.fixture
def bob(db):
    """Here bob writes as well as reviews (as rita does): the four-eyes rule must keep him
    from approving what he wrote, whatever name he writes in the metadata."""
    return member("bob", AUTHORS, REVIEWERS)


@pytest.fixture
def ci_bot(db):
    """A pipeline's account: in the ci group, so it registers only for a person."""
    return member("ci-bot", CI)


def write(tmp_path, name: str, author: str) -> None:
    (tmp_path / "t.yaml").write_text(
        f"name: {name}\nversion: 1.0.0\ntemplate: 'Hi {{who}}'\nmetadata:\n  author: {author}\n"
    )


def register(tmp_path, *options: str) -> None:
    call_command("register_templates", str(tmp_path), *options)


def row(name: str) -> TemplateVersion:
    return TemplateVersion.objects.get(template__name=name, version="1.0.0")


def staging_request(name: str, requester) -> PromotionRequest:
    return reviews.file_request(
        requester, template_name=name, version="1.0.0", target="staging", justification="ready"
    )


def test_a_name_that_is_no_account_is_refused_at_registration(tmp_path, unique_name, ci_bot, erin):
    """`author: Robert` from CI: refused, naming the field and what is accepted."""
    name = unique_name()
    write(tmp_path, name, "Robert")

    with pytest.raises(CommandError) as refused:
        register(tmp_path, "--user", "ci-bot", "--on-behalf-of", "erin")

    assert f"{name} 1.0.0: metadata author 'robert' names no author's account" in str(refused.value)
    assert "REGISTRY_UI_AUTHOR_ALIASES" in str(refused.value)
    assert get_registry().gateway.list_versions(name) == []


def test_a_name_mapped_to_an_account_makes_that_account_an_author(
    tmp_path, unique_name, settings, ci_bot, erin, bob, carol
):
    """`author: Robert`, Robert being bob: bob may not approve his own change."""
    settings.AUTHOR_ALIASES = {"robert": "bob"}
    name = unique_name()
    write(tmp_path, name, "Robert")
    register(tmp_path, "--user", "ci-bot", "--on-behalf-of", "erin")
    request = staging_request(name, erin)

    with pytest.raises(PolicyError, match="you are an author of the version"):
        reviews.approve(bob, request.pk)
    reviews.approve(carol, request.pk)

    assert row(name).author == "bob"
    assert request.version_authors == ",bob,ci-bot,erin,"


def test_the_findings_robert_may_not_approve_what_he_registered_through_ci(
    tmp_path, unique_name, settings, bob, carol
):
    """The finding as it happened: `author: Robert` through `--stage staging --user ci-bot`
    (a pipeline account set up as an author, as the docs once said), and bob approved."""
    member("ci-bot", AUTHORS)
    settings.AUTHOR_ALIASES = {"robert": "bob"}
    name = unique_name()
    write(tmp_path, name, "Robert")
    register(tmp_path, "--stage", "staging", "--user", "ci-bot")
    request = PromotionRequest.objects.get(template__name=name)

    with pytest.raises(PolicyError, match="you are an author of the version"):
        reviews.approve(bob, request.pk)
    reviews.approve(carol, request.pk)

    assert request.version_authors == ",bob,ci-bot,"


def test_a_ci_registration_records_the_ci_account_not_the_machine_user(
    tmp_path, unique_name, alice
):
    """`--user ci-bot` once recorded $USER (root) as the registrant."""
    member("ci-bot", AUTHORS)  # a pipeline account set up as the docs once said: an author
    name = unique_name()
    write(tmp_path, name, "alice")

    register(tmp_path, "--stage", "staging", "--user", "ci-bot")

    [record] = get_registry().gateway.list_versions(name)
    assert (record.registered_by, row(name).registered_by) == ("ci-bot", "ci-bot")


def test_a_ci_account_records_the_person_who_asked_as_an_author(
    tmp_path, unique_name, ci_bot, alice, erin, bob
):
    name = unique_name()
    write(tmp_path, name, "alice")

    register(tmp_path, "--user", "ci-bot", "--on-behalf-of", "erin")

    [record] = get_registry().gateway.list_versions(name)
    version = row(name)
    assert (record.registered_by, record.requested_by) == ("ci-bot", "erin")
    assert (version.author, version.registered_by, version.requested_by) == (
        "alice",
        "ci-bot",
        "erin",
    )
    filed = AuditEvent.objects.get(action="batch.registration_filed")
    assert (filed.actor, filed.after["on_behalf_of"]) == ("ci-bot", "erin")
    assert filed.after["operations"][0]["author"] == "alice"
    request = staging_request(name, bob)
    assert request.version_authors == ",alice,ci-bot,erin,"


def test_a_ci_account_without_the_person_who_asked_is_refused(tmp_path, unique_name, ci_bot):
    name = unique_name()
    write(tmp_path, name, "ci-bot")

    with pytest.raises(CommandError, match="ci-bot is a CI account: name the person"):
        register(tmp_path, "--user", "ci-bot")
    with pytest.raises(CommandError, match="--on-behalf-of 'nobody': no active author"):
        register(tmp_path, "--user", "ci-bot", "--on-behalf-of", "nobody")

    assert get_registry().gateway.list_versions(name) == []


def test_only_a_ci_account_registers_on_behalf_of_someone(tmp_path, unique_name, alice, bob):
    """Otherwise an author could name a reviewer to keep them from reviewing."""
    name = unique_name()
    write(tmp_path, name, "alice")

    with pytest.raises(CommandError, match="only a CI account"):
        register(tmp_path, "--user", "alice", "--on-behalf-of", "bob")


def test_a_name_written_with_spaces_and_capitals_is_its_account(
    tmp_path, unique_name, alice, erin, bob
):
    """`author: " bob "` once kept the spaces, and bob approved his own change."""
    name = unique_name()
    write(tmp_path, name, '" Bob "')
    register(tmp_path, "--user", "alice")
    request = staging_request(name, erin)

    with pytest.raises(PolicyError, match="you are an author of the version"):
        reviews.approve(bob, request.pk)

    assert row(name).author == "bob"


def test_several_names_in_one_author_are_refused(tmp_path, unique_name, alice, bob, carol):
    """`author: "bob,carol"` let the author choose who may not review."""
    name = unique_name()
    write(tmp_path, name, '"bob,carol"')

    with pytest.raises(CommandError, match=r"metadata author 'bob,carol' holds ','"):
        register(tmp_path, "--user", "alice")

    assert get_registry().gateway.list_versions(name) == []


def test_a_reviewer_may_not_be_named_as_the_author(tmp_path, unique_name, alice, carol):
    """Naming a reviewer who writes nothing would only keep them from reviewing."""
    name = unique_name()
    write(tmp_path, name, "carol")

    with pytest.raises(CommandError, match="'carol' names no author's account"):
        register(tmp_path, "--user", "alice")


def test_the_dashboard_refuses_an_unknown_author_on_the_metadata_field(unique_name, alice):
    with pytest.raises(drafts.DraftRefused) as refused:
        drafts.version_file(
            alice,
            name=unique_name(),
            version="1.0.0",
            template="Hi {who}",
            metadata={"author": "Robert"},
            reason="",
        )

    [(field, message)] = refused.value.problems
    assert field == "metadata"
    assert "metadata author 'robert' names no author's account" in message


def test_the_editor_shows_the_refusal_and_files_nothing(unique_name, alice, client):
    client.force_login(alice)
    draft = {
        "name": unique_name(),
        "version": "1.0.0",
        "template": "Hi {who}",
        "metadata": '{"author": "bob,carol"}',
    }

    response = client.post("/versions/new", draft)

    assert response.status_code == 400
    assert "metadata author &#x27;bob,carol&#x27; holds &#x27;,&#x27;" in response.text
    assert not Batch.objects.exists()


# -- versions written into MLflow from outside --------------------------------------------------


def outside(name: str, author: str) -> TemplateVersion:
    PromptModel.register_many([PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": author})])
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    return row(name)


def test_an_outside_version_naming_an_account_is_resolved(unique_name, bob):
    version = outside(unique_name(), " BOB ")

    assert (version.author, version.author_unresolved) == ("bob", False)


def test_an_outside_version_naming_no_account_is_kept_and_that_name_may_not_approve(
    unique_name, erin, client
):
    name = unique_name()
    version = outside(name, "Robert")
    robert = member("robert", REVIEWERS)  # made later, or named in another case
    request = staging_request(name, erin)

    with pytest.raises(PolicyError, match="you are an author of the version"):
        reviews.approve(robert, request.pk)

    assert (version.author, version.author_unresolved) == ("robert", True)
    client.force_login(erin)
    page = client.get(display.version_url(name, "1.0.0")).content.decode()
    assert "no account has this name" in page


def test_an_outside_version_naming_several_is_kept_and_none_of_them_may_approve(
    unique_name, erin, bob, carol
):
    name = unique_name()
    version = outside(name, "bob, carol")
    request = staging_request(name, erin)

    for reviewer in (bob, carol):
        with pytest.raises(PolicyError, match="you are an author of the version"):
            reviews.approve(reviewer, request.pk)

    assert (version.author, version.author_unresolved) == ("bob, carol", True)


# -- versions mirrored before authorship was checked ---------------------------------------------


def test_the_migration_marks_stored_authors_naming_no_account_unresolved(alice):
    from importlib import import_module

    from django.apps import apps

    from tests.support.mirror_rows import template, version

    migration = import_module("registry_ui.web.migrations.0015_authorship")
    row = template("t/before")
    for number, author in [("1.0.0", "Alice"), ("1.0.1", "Robert"), ("1.0.2", "bob,carol")]:
        version(row, number, author=author)
    version(row, "1.0.3", metadata={}, author="")

    migration.mark_unresolved_authors(apps, None)

    stored = TemplateVersion.objects.filter(template=row).order_by("patch")
    assert list(stored.values_list("author", "author_unresolved")) == [
        ("Alice", False),
        ("Robert", True),
        ("bob,carol", True),
        ("", False),
    ]
