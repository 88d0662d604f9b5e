"""The dashboard's pages on mirror rows: a template and its lineage, a version and its render
preview with saved samples, the diff, and the audit log. No MLflow is involved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.http import urlencode

from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, PromotionRequest, TemplateVersion, VersionSample
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import HTMX, signed_in, template, version
from tests.support.users import member

pytestmark = pytest.mark.django_db
HOSTILE = "<script>alert(1)</script>{{ request.user }}"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;{{ request.user }}"


def move(name, number, before, after, actor="worker", source="worker"):
    return trail.record(
        actor=actor,
        action="version.stage_changed",
        object_type="template_version",
        object_id=f"{name}@{number}",
        before={"stage": before},
        after={"stage": after},
        source=source,
    )


def executed(request_id: int, name: str, number: str, target: str, why: str, approved_by):
    """The request (carried out) and its "request.executed" event, as the worker leaves them."""
    row = TemplateVersion.objects.get(template__name=name, version=number)
    PromotionRequest.objects.create(
        id=request_id,
        template=row.template,
        version=row,
        content_sha256=row.content_sha256,
        from_stage="staging",
        target_stage=target,
        requester=member(f"requester-{request_id}", "authors"),
        justification=why,
        required_approvals=len(approved_by),
        status="done",
    )
    return trail.record(
        actor="alice",
        action="request.executed",
        object_type="promotion_request",
        object_id=str(request_id),
        after={
            "kind": "promote",
            "template": name,
            "version": number,
            "target_stage": target,
            "justification": why,
            "approved_by": approved_by,
        },
        source="worker",
    )


# -- the template page -------------------------------------------------------------------------


def test_the_template_page_shows_its_holders_metadata_and_lineage(alice):
    row = template("persona/hook")
    start = timezone.now() - timedelta(days=3)
    version(row, "1.0.0", "Hi {who}", stage="archived", created_at=start)
    version(row, "1.1.0", "Hi {who} {when}", stage="production", created_at=start)
    version(row, "2.0.0", "Hey {when}", stage="staging", author="ann", created_at=start)
    move("persona/hook", "1.1.0", "staging", "production")
    executed(41, "persona/hook", "1.1.0", "production", "beats 1.0.0 by 2 points", ["bob", "carol"])
    move("persona/hook", "2.0.0", "dev", "staging", actor="mlflow")

    response = signed_in(alice).get("/templates/persona/hook")

    assert response.status_code == 200
    text = response.text
    assert 'id="holder-production"' in text and 'id="holder-staging"' in text
    assert "greets people" in text  # the production version's metadata
    lineage = [row["entry"] for row in response.context["timeline"]]
    moves = [
        (e.version, e.from_stage, e.to_stage, e.request_id) for e in lineage if e.kind == "stage"
    ]
    assert moves == [("2.0.0", "dev", "staging", None), ("1.1.0", "staging", "production", 41)]
    bumps = {e.version: e.bump for e in lineage if e.kind == "version"}
    assert bumps == {"1.0.0": "first version", "1.1.0": "minor", "2.0.0": "major"}
    assert "beats 1.0.0 by 2 points" in text
    assert 'href="/requests/41/"' in text and "approved by bob, carol" in text
    assert "registered by ann" in text


def test_the_template_page_links_pending_requests_to_their_diff(alice):
    row = template("t/pending")
    version(row, "1.0.0", stage="staging")
    version(row, "1.0.1")
    filed = reviews.file_request(
        alice, template_name="t/pending", version="1.0.1", target="staging", justification="j"
    )

    response = signed_in(alice).get("/templates/t/pending")

    assert f'href="/requests/{filed.pk}/"' in response.text
    assert 'href="/templates/t/pending/-/diff?from=1.0.0&amp;to=1.0.1"' in response.text


def test_an_unknown_template_is_a_404(alice):
    assert signed_in(alice).get("/templates/no/such").status_code == 404


# -- the version page and its preview ----------------------------------------------------------


def test_the_preview_form_is_built_from_the_variables_and_renders_as_you_type(alice):
    row = template("t/preview")
    text = "Dear {user[name]}, you owe {amount:,.2f} since {when:%Y-%m-%d}: {note}"
    version(row, "1.0.0", text)
    client = signed_in(alice)
    url = "/templates/t/preview/-/versions/1.0.0"

    empty = client.get(url)
    shown = client.get(
        url,
        {
            "v.user": '{"name": "Ann"}',
            "v.amount": "1234.5",
            "v.when": "2026-11-28",
            "v.note": "thanks",
        },
        headers=HTMX,
    )

    assert 'hx-trigger="input changed delay:300ms, submit"' in empty.text
    assert 'hx-get="/templates/t/preview/-/versions/1.0.0"' in empty.text
    for name in ("user", "amount", "when", "note"):
        assert f'<label for="preview-{name}">{name}' in empty.text
    assert "Fill in the values above" in empty.text
    assert "<html" not in shown.text
    assert "Dear Ann, you owe 1,234.50 since 2026-11-28: thanks" in shown.text
    assert 'id="preview-status" hx-swap-oob="innerHTML">Output updated.' in shown.text


def test_preview_errors_appear_beside_their_fields(alice):
    version(template("t/errors"), "1.0.0", "{user[name]} owes {amount:.2f} {user[age]}")
    client = signed_in(alice)
    url = "/templates/t/errors/-/versions/1.0.0"

    bad_json = client.get(url, {"v.user": "{name: Ann}", "v.amount": "12"})
    bad_number = client.get(url, {"v.user": '{"name": "Ann"}', "v.amount": "twelve"})
    missing_key = client.get(url, {"v.user": '{"name": "Ann"}', "v.amount": "12"})

    assert 'id="preview-user" name="v.user" rows="4" aria-invalid="true"' in bad_json.text
    assert '<p class="field-error" id="preview-user-error">not JSON at 1:2' in bad_json.text
    assert (
        '<p class="field-error" id="preview-amount-error">&#x27;twelve&#x27; is not a number'
        in (bad_number.text)
    )
    assert '<p class="field-error" id="preview-user-error">field &#x27;user[age]&#x27;' in (
        missing_key.text
    )
    assert "has no key &#x27;age&#x27;" in missing_key.text


def test_saved_samples_are_shown_to_every_reviewer(alice, bob):
    version(template("t/sample"), "1.0.0", "Hi {who}")
    url = "/templates/t/sample/-/versions/1.0.0"

    saved = signed_in(alice).post(f"{url}/samples", {"sample_name": "ann", "v.who": "Ann"})
    seen = signed_in(bob).get(url)

    assert saved.status_code == 303
    assert saved["Location"] == f"{url}?sample=ann#preview"
    assert "Showing the saved sample <strong>ann</strong>, saved by alice" in seen.text
    assert '<pre class="prompt output">Hi Ann</pre>' in seen.text
    event = AuditEvent.objects.get(action="sample.saved")
    assert (event.actor, event.object_id, event.source) == ("alice", "t/sample@1.0.0", "dashboard")
    assert event.after["values"] == {"who": "Ann"} and event.before is None


def test_saving_a_sample_again_replaces_it_and_audits_the_old_values(alice, bob):
    version(template("t/again"), "1.0.0", "Hi {who}")
    url = "/templates/t/again/-/versions/1.0.0/samples"
    signed_in(alice).post(url, {"sample_name": "main", "v.who": "Ann"})

    response = signed_in(bob).post(url, {"sample_name": "main", "v.who": "Bo"}, headers=HTMX)

    assert response.status_code == 200
    assert "Saved as main." in response.text
    sample = VersionSample.objects.get()
    assert (sample.values, sample.saved_by_username) == ({"who": "Bo"}, "bob")
    last = AuditEvent.objects.filter(action="sample.saved").last()
    assert last.before == {"values": {"who": "Ann"}}


def test_samples_are_saved_by_authors_or_reviewers_only_and_must_render(alice, dave):
    version(template("t/guarded"), "1.0.0", "{n:d} items")
    url = "/templates/t/guarded/-/versions/1.0.0/samples"

    refused = signed_in(dave).post(url, {"v.n": "3"})
    broken = signed_in(alice).post(url, {"v.n": "three"})

    assert refused.status_code == 403
    assert broken.status_code == 400
    assert "these values do not render" in broken.text
    assert "&#x27;three&#x27; is not a number" in broken.text
    assert not VersionSample.objects.exists()
    assert not AuditEvent.objects.filter(action="sample.saved").exists()


# -- the diff ----------------------------------------------------------------------------------


def test_the_diff_defaults_to_the_version_under_review_against_the_one_it_replaces(alice):
    row = template("t/diff")
    version(row, "1.0.0", "Hi {who}", stage="production")
    version(row, "1.1.0", "Hi {who}, from {city}", stage="staging")
    version(row, "1.2.0", "Hi {who}!")
    reviews.file_request(
        alice, template_name="t/diff", version="1.1.0", target="production", justification="j"
    )

    response = signed_in(alice).get("/templates/t/diff/-/diff")

    assert response.status_code == 303
    assert response["Location"] == "/templates/t/diff/-/diff?from=1.0.0&to=1.1.0&view=side"


def test_the_diff_shows_words_variables_metadata_and_bumps_with_markers(alice):
    row = template("t/words")
    version(row, "1.0.0", "Hello {name}, your balance is {balance:.2f}\nBye", metadata={"a": 1})
    version(
        row,
        "1.0.1",
        "Hi {name}, your balance is {balance:,.2f} on {day}\nBye",
        metadata={"a": 2, "b": True},
    )
    client = signed_in(alice)

    side = client.get("/templates/t/words/-/diff", {"from": "1.0.0", "to": "1.0.1"})
    inline = client.get(
        "/templates/t/words/-/diff", {"from": "1.0.0", "to": "1.0.1", "view": "inline"}
    )

    text = side.text
    assert side.status_code == 200
    assert '<del><span class="visually-hidden">[removed: </span>Hello' in text
    assert '<ins><span class="visually-hidden">[added: </span>Hi' in text
    assert '<span class="marker" aria-hidden="true">\u2212</span>' in text  # a minus sign
    assert '<span class="marker" aria-hidden="true">+</span>' in text
    assert "<code>day</code></td><td>callers must now pass it" in text
    assert "spec <code>.2f</code> → <code>,.2f</code>" in text
    assert "<strong>⚠ Breaks callers:</strong>" in text
    assert "<code>b</code>" in text and "changed" in text
    assert "<dt>Declared</dt><dd>patch (1.0.0 → 1.0.1)</dd>" in text
    assert "<dt>Required</dt><dd>minor" in text
    assert "1.0.1 should be 1.1.0 or later" in text
    assert (
        "http://testserver/templates/t/words/-/diff?from=1.0.0&amp;to=1.0.1&amp;view=side" in text
    )
    assert '<table class="diff inline">' in inline.text and "±" in inline.text


def test_the_diff_names_an_unknown_version_and_offers_the_others(alice):
    version(template("t/unknown"), "1.0.0")

    response = signed_in(alice).get("/templates/t/unknown/-/diff", {"from": "9.9.9", "to": "1.0.0"})

    assert response.status_code == 400
    assert "from=&#x27;9.9.9&#x27;: t/unknown has no such version" in response.text
    assert "has only one version (1.0.0)" in response.text


# -- the audit log -----------------------------------------------------------------------------


def test_the_audit_log_filters_by_template_actor_action_source_and_dates(alice, bob):
    move("a/one", "1.0.0", "dev", "staging", actor="worker")
    move("b/two", "1.0.0", "dev", "staging", actor="carol", source="command")
    trail.record(
        actor="bob", action="request.filed", object_type="promotion_request", object_id="7",
        after={"template": "a/one"}, source="dashboard",
    )  # fmt: skip
    client = signed_in(bob)

    def seqs(**query):
        return [row["event"].object_id for row in client.get("/audit/", query).context["events"]]

    assert seqs(template="a/one") == ["7", "a/one@1.0.0"]
    assert seqs(actor="carol") == ["b/two@1.0.0"]
    assert seqs(action="request.") == ["7"]
    assert seqs(action="version.stage_changed", source="worker") == ["a/one@1.0.0"]
    assert seqs(since="2000-01-01", until=timezone.now().date().isoformat()) != []
    assert seqs(until="2000-01-01") == []


def test_the_audit_log_pages_by_keyset_and_links_the_export_with_its_filters(bob, alice):
    for number in range(60):
        move("t/many", f"1.0.{number}", "dev", "staging")
    client = signed_in(bob)

    first = client.get("/audit/", {"template": "t/many", "since": "2000-01-01", "source": "worker"})
    older = client.get("/audit/" + first.context["next_url"])

    assert len(first.context["events"]) == 50 and len(older.context["events"]) == 10
    assert first.context["events"][-1]["event"].seq > older.context["events"][0]["event"].seq
    export = 'href="/audit/export.csv?template=t%2Fmany&amp;source=worker&amp;since=2000-01-01"'
    assert export in first.text  # every filter of the page, so the export holds what it shows
    assert "Export as CSV" not in signed_in(alice).get("/audit/").text  # no export permission


def test_the_audit_log_checks_its_filters_as_the_export_does(bob):
    response = signed_in(bob).get(
        "/audit/", {"template": "a//b", "actor": "x" * 151, "source": "mlflow"}
    )

    assert response.status_code == 400
    errors = response.context["errors"]
    assert "segment 2 '(empty)' is not accepted" in errors["template"]
    assert errors["actor"] == "actor is longer than 150 characters"
    assert errors["source"].startswith("source 'mlflow' is not one of: dashboard")
    assert 'id="audit-template-error"' in response.text


def test_the_audit_log_says_which_date_is_wrong(bob):
    response = signed_in(bob).get("/audit/", {"since": "yesterday"})

    assert response.status_code == 400
    assert "since=&#x27;yesterday&#x27; is not understood" in response.text
    assert 'id="audit-since" name="since" value="yesterday"' in response.text


# -- escaping ----------------------------------------------------------------------------------


def test_hostile_text_and_metadata_are_escaped_on_every_page(alice):
    row = template("t/hostile")
    text = "{who} " + HOSTILE.replace("{", "{{").replace("}", "}}")
    version(row, "1.0.0", text, metadata={"note": HOSTILE, HOSTILE: "key"}, author=HOSTILE)
    version(row, "1.0.1", text + " {x}", metadata={"note": HOSTILE + "2"}, stage="staging")
    trail.record(
        actor=HOSTILE, action="sample.saved", object_type="version_sample",
        object_id="t/hostile@1.0.0", after={"values": {"who": HOSTILE}}, source="dashboard",
    )  # fmt: skip
    client = signed_in(alice)
    pages = [
        "/",
        "/templates/t/hostile",
        "/templates/t/hostile/-/versions/1.0.0?" + urlencode({"v.who": HOSTILE}),
        "/templates/t/hostile/-/diff?from=1.0.0&to=1.0.1",
        "/templates/t/hostile/-/diff?from=1.0.0&to=1.0.1&view=inline",
        "/audit/",
    ]

    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<script>alert(1)</script>" not in response.text, url
    preview = client.get(pages[2]).text
    assert f'<pre class="prompt output">{ESCAPED} {ESCAPED}</pre>' in preview


def test_every_page_answers_a_signed_in_reader_without_a_role(reader):
    row = template("t/reader")
    version(row, "1.0.0", stage="production")
    version(row, "1.0.1")
    client = signed_in(reader)

    for url in (
        "/",
        "/templates/t/reader",
        "/templates/t/reader/-/versions/1.0.1",
        "/templates/t/reader/-/diff?from=1.0.0&to=1.0.1",
        "/versions/new",
        "/operations/",
        "/audit/",
    ):
        assert client.get(url).status_code == 200, url


def test_the_diff_and_the_version_page_show_test_cases_a_new_version_breaks(alice):
    cases = [
        {"name": "fits a post", "values": {"name": "Ann"}, "max_length": 20},
        {"name": "says hi", "values": {"name": "Ann"}, "contains": ["Hi"]},
    ]
    row = template("t/cases")
    version(row, "1.0.0", "Hi {name}", metadata={"test_cases": cases})
    version(
        row, "1.1.0", "Hello there {name}, a much longer greeting", metadata={"test_cases": cases}
    )
    client = signed_in(alice)

    diff = client.get("/templates/t/cases/-/diff", {"from": "1.0.0", "to": "1.1.0"})
    same = client.get("/templates/t/cases/-/diff", {"from": "1.0.0", "to": "1.0.0"})

    assert diff.status_code == 200
    assert "1.1.0 breaks 2 cases that 1.0.0 passed" in diff.text
    assert "<strong>fits a post</strong>" in diff.text
    assert "1.0.0 breaks no case that 1.0.0 passed" in same.text
    page = client.get("/templates/t/cases/-/versions/1.1.0")
    assert page.status_code == 200
    assert 'class="checks"' in page.text
    assert "The test cases have not been run yet." in page.text  # rows made without a run
