"""The review pages: the inbox, a request's page, and the forms that file and decide requests.

Most tests run on mirror rows only (approved requests become operations sent after commit,
and the test's transaction never commits); the first one goes all the way to MLflow.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import PromotionRequest, Template, TemplateVersion
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import inbox, releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine

pytestmark = pytest.mark.django_db
HOSTILE = "<script>alert(1)</script>{{ request.user }}"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;{{ request.user }}"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def users(erin, bob, carol, rita, dave) -> dict[str, User]:
    """From the shared cast (tests/web/conftest.py): erin files requests, bob and carol
    review, rita files and reviews others' requests, dave analyses."""
    return {user.username: user for user in (erin, bob, carol, rita, dave)}


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def template(name: str, *versions: tuple[str, str], text: str = "Hi {who}", **extra) -> Template:
    """Mirror rows of versions written by "writer" (the registry is not involved)."""
    row = Template.objects.create(name=name, registered_model_name=name.replace("/", "."))
    for number, stage in versions:
        major, minor, patch = (int(n) for n in number.split("."))
        TemplateVersion.objects.create(
            template=row,
            version=number,
            major=major,
            minor=minor,
            patch=patch,
            stage=stage,
            text=text,
            metadata=extra.get("metadata", {"author": "writer"}),
            author="writer",
            content_sha256=f"{number:0>64}",
            mlflow_version=str(patch + 1),
            was_production=stage in ("production", "archived"),
        )
    return row


def file(user, name, version="1.0.0", target="staging", justification="ready"):
    return reviews.file_request(
        user, template_name=name, version=version, target=target, justification=justification
    )


# --- the whole way, to MLflow --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks")
def test_it_files_a_request_and_carries_it_out_after_two_approvals(users, unique_name):
    name = unique_name()
    PromptModel.register_many([PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": "al"})])
    get_registry().promote(name, "1.0.0", "staging")
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")

    filed = as_user(users["erin"]).post(
        "/requests/new",
        {"template": name, "version": "1.0.0", "target": "production", "justification": "q4"},
    )
    request = PromotionRequest.objects.get()
    first = as_user(users["bob"]).post(f"/requests/{request.pk}/approve", {"comment": "good"})
    halfway = as_user(users["erin"]).get(f"/requests/{request.pk}/")
    second = as_user(users["carol"]).post(f"/requests/{request.pk}/approve")

    assert (filed.status_code, filed["Location"]) == (303, f"/requests/{request.pk}/")
    assert (first.status_code, second.status_code) == (303, 303)
    assert "1 of 2 required" in halfway.text
    request.refresh_from_db()
    assert (request.status, request.outcome) == ("done", "carried out")
    stages = {r.version: r.stage.value for r in get_registry().gateway.list_versions(name)}
    assert stages == {"1.0.0": "production"}
    page = as_user(users["erin"]).get(f"/requests/{request.pk}/")
    assert '<span class="status done">Done</span>' in page.text
    assert "2 of 2 required" in page.text
    assert "good" in page.text  # bob's comment, in the thread


# --- htmx gets the fragment ----------------------------------------------------------------


def test_an_htmx_approval_answers_with_the_review_fragment(users):
    template("t/a", ("1.0.0", "staging"))
    request = file(users["erin"], "t/a", target="production")

    response = as_user(users["bob"]).post(
        f"/requests/{request.pk}/approve", {"comment": "fine by me"}, headers=HTMX
    )

    assert response.status_code == 200
    # The navigation's count, swapped out of band (bob has nothing left to review), then
    # the review section.
    badge, section = response.text.strip().split("\n", 1)
    assert badge == '<span id="review-badge" aria-live="polite" hx-swap-oob="true"></span>'
    assert section.lstrip().startswith('<section id="request-review"')
    assert "<html" not in response.text
    assert "1 of 2 required" in response.text
    assert "You approved this request." in response.text
    assert "fine by me" in response.text


def test_htmx_comments_rejections_and_withdrawals_answer_with_the_fragment(users):
    template("t/a", ("1.0.0", "dev"), ("1.0.1", "dev"))
    rejected, withdrawn = file(users["erin"], "t/a"), file(users["erin"], "t/a", "1.0.1")

    commented = as_user(users["bob"]).post(
        f"/requests/{rejected.pk}/comment", {"text": "which tone?"}, headers=HTMX
    )
    rejection = as_user(users["bob"]).post(
        f"/requests/{rejected.pk}/reject", {"comment": "wrong tone"}, headers=HTMX
    )
    withdrawal = as_user(users["erin"]).post(f"/requests/{withdrawn.pk}/withdraw", headers=HTMX)

    assert commented.status_code == rejection.status_code == withdrawal.status_code == 200
    assert "which tone?" in commented.text
    assert '<span class="status rejected">Rejected</span>' in rejection.text
    assert "(rejection)" in rejection.text and "Approve</button>" not in rejection.text
    assert '<span class="status withdrawn">Withdrawn</span>' in withdrawal.text
    assert "Withdraw the request" not in withdrawal.text


# --- refusals are shown where they happened ------------------------------------------------


def test_a_refused_approval_is_a_400_with_the_message_in_the_approve_form(users):
    template("t/a", ("1.0.0", "dev"))
    request = file(users["rita"], "t/a")
    rita = as_user(users["rita"])

    page = rita.post(f"/requests/{request.pk}/approve", {"comment": "mine"})
    fragment = rita.post(f"/requests/{request.pk}/approve", headers=HTMX)

    assert page.status_code == fragment.status_code == 400
    form = page.text[page.text.index('action="/requests/') :]
    assert form.index("four-eyes rule") < form.index("Approve</button>")
    assert "four-eyes rule" in fragment.text
    assert (
        fragment.text.split('<section id="request-review"', 1)[0]
        .strip()
        .startswith('<span id="review-badge"')
    )
    assert not request.approvals.exists()


def test_filing_shows_the_policy_message_and_keeps_what_was_typed(users):
    template("t/a", ("1.0.0", "dev"))

    response = as_user(users["erin"]).post(
        "/requests/new",
        {"template": "t/a", "version": "1.0.0", "target": "production", "justification": "asap"},
    )

    assert response.status_code == 400
    assert "from dev straight to production: promote it to staging first" in response.text
    assert ">\nasap</textarea>" in response.text
    assert not PromotionRequest.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": "1.0.0", "target": "staging", "justification": "j"}, "Template is required"),
        ({"template": "t/a", "target": "staging", "justification": "j"}, "Version is required"),
        (
            {"template": "t/a", "version": "1.0", "target": "staging", "justification": "j"},
            "Version: ",
        ),
        (
            {"template": "t/a", "version": "1.0.0", "target": "prod", "justification": "j"},
            "Move it to: prod is not one of the choices",
        ),
        (
            {"template": "t/a", "version": "1.0.0", "target": "staging", "justification": " "},
            "Justification is required: say why",
        ),
        (
            {"template": "t a", "version": "1.0.0", "target": "staging", "justification": "j"},
            "Template: template name &#x27;t a&#x27;",
        ),
        (
            {
                "template": "t/a",
                "version": "1.0.0",
                "target": "staging",
                "justification": "x" * 5001,
            },
            "Justification is 5001 characters long: at most 5000 are accepted",
        ),
    ],
)
def test_the_request_form_names_the_field_that_is_wrong(users, data, message):
    template("t/a", ("1.0.0", "dev"))

    response = as_user(users["erin"]).post("/requests/new", data)

    assert response.status_code == 400
    assert message in response.text
    assert not PromotionRequest.objects.exists()


def test_a_rejection_needs_a_comment(users):
    template("t/a", ("1.0.0", "dev"))
    request = file(users["erin"], "t/a")

    response = as_user(users["bob"]).post(f"/requests/{request.pk}/reject", {"comment": ""})

    assert response.status_code == 400
    assert "Why it is rejected is required: say what should change." in response.text
    request.refresh_from_db()
    assert request.status == "open"


def test_an_action_on_a_request_that_does_not_exist_is_a_404(users):
    assert as_user(users["bob"]).post("/requests/999999/comment", {"text": "hi"}).status_code == 404


# --- escaping ------------------------------------------------------------------------------


def test_prompt_text_comments_justification_and_metadata_are_escaped(users):
    template("t/a", ("1.0.0", "dev"), text=HOSTILE + " {who}", metadata={HOSTILE: HOSTILE})
    request = file(users["erin"], "t/a", justification=HOSTILE)
    reviews.add_comment(users["bob"], request.pk, text=HOSTILE)

    detail = as_user(users["bob"]).get(f"/requests/{request.pk}/")
    listed = as_user(users["bob"]).get("/requests/?tab=all")

    for page in (detail, listed):
        assert page.status_code == 200
        assert "<script>alert" not in page.text
    # The text in <pre>, the metadata's key and value, the justification and the comment.
    assert f'<pre class="prompt">{ESCAPED} {{who}}</pre>' in detail.text
    assert detail.text.count(ESCAPED) == 5
    assert f"<td>{ESCAPED}</td>" in listed.text  # the justification


# --- the inbox -----------------------------------------------------------------------------


def test_the_tabs_list_waiting_mine_open_and_all(users):
    template("t/a", *((f"1.0.{n}", "dev") for n in range(5)))
    by_erin = file(users["erin"], "t/a", "1.0.0")
    by_rita = file(users["rita"], "t/a", "1.0.1")
    approved_by_bob = file(users["erin"], "t/a", "1.0.2", justification="approved")
    reviews.approve(users["bob"], approved_by_bob.pk)  # executing now
    rejected = file(users["erin"], "t/a", "1.0.3")
    reviews.reject(users["carol"], rejected.pk, comment="no")
    bob, rita = as_user(users["bob"]), as_user(users["rita"])

    def listed(client, tab):
        return [r.pk for r in client.get(f"/requests/?tab={tab}").context["page"].object_list]

    assert listed(bob, "waiting") == [by_rita.pk, by_erin.pk]
    assert len(listed(bob, "waiting")) == inbox.waiting_for(users["bob"])
    assert listed(rita, "waiting") == [by_erin.pk]  # never her own request
    assert listed(rita, "mine") == [by_rita.pk]
    assert listed(bob, "open") == [approved_by_bob.pk, by_rita.pk, by_erin.pk]
    assert listed(bob, "all") == [rejected.pk, approved_by_bob.pk, by_rita.pk, by_erin.pk]
    assert bob.get("/requests/").context["tab"] == "waiting"  # a reviewer's default
    assert as_user(users["erin"]).get("/requests/").context["tab"] == "mine"


def test_an_unknown_tab_is_refused_with_the_accepted_ones(users):
    response = as_user(users["bob"]).get("/requests/?tab=everything")

    assert response.status_code == 400
    assert "tab=waiting, tab=mine, tab=open, tab=all" in response.text


def test_the_inbox_is_paginated_by_50(users):
    template("t/a", *((f"1.0.{n}", "dev") for n in range(51)))
    for n in range(51):
        file(users["erin"], "t/a", f"1.0.{n}")
    bob = as_user(users["bob"])

    first, second = bob.get("/requests/?tab=all"), bob.get("/requests/?tab=all&page=2")

    assert len(first.context["page"].object_list) == 50
    assert len(second.context["page"].object_list) == 1
    assert 'href="?tab=all&amp;page=2" rel="next"' in first.text


def list_queries(client, tab) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/requests/?tab={tab}").status_code == 200
    return len(queries)


@pytest.mark.parametrize("tab", ["waiting", "all"])
def test_the_inbox_makes_as_many_queries_for_30_requests_as_for_3(users, tab):
    template("t/a", ("1.0.0", "staging"))
    template("t/b", *((f"1.0.{n}", "dev") for n in range(28)))
    template("t/c", ("1.0.0", "dev"))
    # Three of every kind of row a line shows: a release, approvals and comments, requesters.
    releases.file_release(
        users["erin"], lines=[ReleaseLine("t/c", "1.0.0", "staging")], justification="r"
    )
    production = file(users["erin"], "t/a", target="production")
    reviews.approve(users["carol"], production.pk, comment="ok")
    reviews.add_comment(users["erin"], production.pk, text="thanks")
    file(users["rita"], "t/b", "1.0.0")
    bob = as_user(users["bob"])
    few = list_queries(bob, tab)
    assert len(bob.get(f"/requests/?tab={tab}").context["page"].object_list) == 3

    for n in range(1, 28):
        file(users["rita" if n % 2 else "erin"], "t/b", f"1.0.{n}")
    many = list_queries(bob, tab)

    assert len(bob.get(f"/requests/?tab={tab}").context["page"].object_list) == 30
    assert many == few


# --- the request page ----------------------------------------------------------------------


def test_the_page_shows_the_forms_the_user_may_use(users):
    template("t/a", ("1.0.0", "staging"))
    request = file(users["rita"], "t/a", target="production")

    def forms(user):
        text = as_user(user).get(f"/requests/{request.pk}/").text
        buttons = ["Approve</button>", "Reject</button>", "Comment</button>", "Withdraw the"]
        return [b.split("<")[0].split(" ")[0] for b in buttons if b in text]

    assert forms(users["bob"]) == ["Approve", "Reject", "Comment"]
    assert forms(users["rita"]) == ["Comment", "Withdraw"]
    assert forms(users["erin"]) == ["Comment"]
    assert forms(users["dave"]) == []


def test_a_failing_gate_asks_for_a_reason_to_approve_anyway(users, settings):
    # A real failing gate: approving evaluates the gate again, so a stored verdict alone
    # would not survive it (tests/web/experiments/test_experiments.py covers the gate).
    from tests.web.experiments.test_experiments import define, ingest, mirror, outcomes

    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"}, target=0.01)
    define(min_samples=1000)
    ingest(outcomes("control", 120, 1000) + outcomes("treatment", 60, 1000))
    request = file(users["erin"], "t/hook", version="1.2.0", target="production")
    bob = as_user(users["bob"])

    page = bob.get(f"/requests/{request.pk}/")
    refused = bob.post(f"/requests/{request.pk}/approve")
    accepted = bob.post(f"/requests/{request.pk}/approve", {"gate_reason": "seasonal dip"})

    assert '<span class="gate fail">Metric gate fails: significantly worse than production' in (
        page.text
    )
    assert "Reason for approving although the metric gate fails" in page.text
    assert refused.status_code == 400
    assert "approving anyway needs a written reason" in refused.text
    assert accepted.status_code == 303
    assert request.approvals.get().gate_override_reason == "seasonal dip"


def test_a_release_page_shows_its_items_and_an_item_points_to_its_release(users):
    template("t/a", ("1.0.0", "staging"))
    template("t/b", ("1.0.0", "dev"))
    release = releases.file_release(
        users["erin"],
        lines=[ReleaseLine("t/a", "1.0.0", "production"), ReleaseLine("t/b", "1.0.0", "staging")],
        justification="spring",
    )
    item = release.items.order_by("id").first()
    bob = as_user(users["bob"])

    page, item_page = bob.get(f"/requests/{release.pk}/"), bob.get(f"/requests/{item.pk}/")

    assert "2 templates in this release" in page.text
    assert f'href="/requests/{item.pk}/">t/a</a>' in page.text
    assert "0 of 2 required" in page.text and "Approve</button>" in page.text
    assert f'Part of <a href="/requests/{release.pk}/">release #{release.pk}</a>' in item_page.text
    assert "Approve</button>" not in item_page.text


# --- filing pages --------------------------------------------------------------------------


def test_the_request_form_is_filled_from_the_query_string(users):
    template("t/a", ("1.0.0", "dev"))

    page = as_user(users["erin"]).get("/requests/new?template=t/a&version=1.0.0")

    assert 'name="template" value="t/a"' in page.text
    assert 'name="version" value="1.0.0"' in page.text
    assert '<option value="t/a"></option>' in page.text  # the datalist of templates


def test_a_rollback_offers_only_versions_that_held_production(users):
    template("t/a", ("1.0.0", "archived"), ("1.0.1", "production"), ("1.0.2", "staging"))
    bob = as_user(users["bob"])

    page = bob.get("/rollback/new?template=t/a")
    filed = bob.post("/rollback/new", {"template": "t/a", "version": "1.0.0", "reason": "bad"})
    refused = bob.post("/rollback/new", {"template": "t/a", "version": "1.0.2", "reason": "x"})

    assert [value for value, _ in page.context["form"].fields["version"].choices] == ["1.0.0"]
    rollback = PromotionRequest.objects.get(kind="rollback")
    assert (filed.status_code, filed["Location"]) == (303, f"/requests/{rollback.pk}/")
    assert refused.status_code == 400
    assert "Version to bring back: 1.0.2 is not one of the choices offered." in refused.text


def test_a_release_is_dry_run_without_writing_then_filed(users):
    template("t/a", ("1.0.0", "production"), ("1.0.1", "staging"))
    template("t/b", ("1.0.0", "dev"))
    erin = as_user(users["erin"])
    lines = "t/a 1.0.1 production\n\n  t/b   1.0.0 staging  \n"

    dry = erin.post("/releases/new", {"lines": lines, "action": "dry_run"})
    filed = erin.post("/releases/new", {"lines": lines, "justification": "go", "action": "file"})

    assert dry.status_code == 200
    assert "1.0.1: staging -&gt; production<br>1.0.0: production -&gt; archived" in dry.text
    assert "No problems: the release can be filed." in dry.text
    release = PromotionRequest.objects.get(kind="release")
    assert (filed.status_code, filed["Location"]) == (303, f"/requests/{release.pk}/")
    assert sorted(release.items.values_list("template__name", "target_stage")) == [
        ("t/a", "production"),
        ("t/b", "staging"),
    ]


def test_a_release_with_problems_is_shown_them_and_not_filed(users):
    template("t/b", ("1.0.0", "dev"))
    erin = as_user(users["erin"])

    dry = erin.post("/releases/new", {"lines": "t/b 1.0.0 production", "action": "dry_run"})
    filed = erin.post(
        "/releases/new",
        {"lines": "t/b 1.0.0 production", "justification": "go", "action": "file"},
    )
    unknown = erin.post("/releases/new", {"lines": "t/b 1.0.0 prod", "action": "dry_run"})
    malformed = erin.post("/releases/new", {"lines": "t/b 1.0.0", "action": "file"})

    assert dry.status_code == 200
    assert "Fix the problems above before filing the release." in dry.text
    assert filed.status_code == unknown.status_code == malformed.status_code == 400
    assert "the release cannot be requested: " in filed.text
    assert "unknown stage &#x27;prod&#x27;: use one of" in unknown.text
    assert "Versions, line 1: “t/b 1.0.0” has 2 words" in malformed.text
    assert "Justification is required to file a release" in malformed.text
    assert not PromotionRequest.objects.exists()


def test_filing_pages_say_which_permission_is_missing(users):
    dave = as_user(users["dave"])

    assert "needs the request_promotion permission" in dave.get("/requests/new").text
    assert "needs the rollback_production permission" in dave.get("/rollback/new").text
    assert "anyone may dry-run one" in dave.get("/releases/new").text


def test_the_nav_links_to_the_requests(users):
    page = as_user(users["erin"]).get("/requests/")

    assert '<a href="/requests/" aria-current="page">Requests</a>' in page.text


def test_a_refusal_page_says_what_permission_is_missing(client, dave):
    client.force_login(dave)  # an analyst
    form = {"template": "t", "version": "1.0.0", "target": "staging", "justification": "j"}
    response = client.post("/requests/new", form)
    assert response.status_code == 403
    assert "request_promotion permission" in response.content.decode()


# --- the request's page shows what changes --------------------------------------------------


def add_version(row: Template, number: str, stage: str, text: str, metadata: dict) -> None:
    major, minor, patch = (int(n) for n in number.split("."))
    TemplateVersion.objects.create(
        template=row, version=number, major=major, minor=minor, patch=patch, stage=stage,
        text=text, metadata=metadata, author="writer", content_sha256=f"{number:0>64}",
        mlflow_version=str(minor + 1),
    )  # fmt: skip


def test_a_request_page_shows_the_change_against_the_version_it_would_replace(users):
    row = template("t/change", ("1.0.0", "production"), text="Hi {who}, welcome.")
    add_version(row, "1.0.1", "archived", "Hey {who}.", {"author": "writer"})  # not compared
    new_metadata = {"author": "writer", "tone": "warm"}
    add_version(row, "1.1.0", "staging", "Hi {who}, welcome {when:%H}.", new_metadata)
    request = file(users["erin"], "t/change", version="1.1.0", target="production")

    page = as_user(users["bob"]).get(f"/requests/{request.pk}/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "What changes against 1.0.0" in text  # production's holder, not 1.0.1
    assert '<ins><span class="visually-hidden">[added: </span>' in text  # the text, inline
    assert "<code>when</code>" in text  # the variable diff: added
    assert "Breaks callers" in text
    assert "<code>tone</code>" in text  # the metadata diff
    assert "/-/diff?from=1.0.0&amp;to=1.1.0" in text  # the full diff, to share
    assert "1.1.0</a> registered by writer" in text  # the template's lineage


def test_a_request_page_shows_structured_metadata_as_json(users):
    template("t/meta", ("1.0.0", "dev"), metadata={"author": "writer", "limits": {"chars": 280}})
    request = file(users["erin"], "t/meta")

    text = as_user(users["bob"]).get(f"/requests/{request.pk}/").content.decode()

    assert "{&quot;chars&quot;: 280}" in text  # JSON, not a Python repr
    assert "&#x27;chars&#x27;" not in text


def test_a_first_version_s_request_says_there_is_nothing_to_compare(users):
    template("t/first", ("1.0.0", "dev"))
    request = file(users["erin"], "t/first")

    page = as_user(users["bob"]).get(f"/requests/{request.pk}/")

    assert "1.0.0 is the first version of t/first: there is nothing to compare it with" in (
        page.content.decode()
    )
