"""Read endpoints: what each answers, the problems for bad queries, and fixed query counts
whatever the number of rows (counted with few rows and with many)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_ui.core.diff import compare_templates
from registry_ui.web.models import ApiToken
from registry_ui.web.reviews import services as reviews
from tests.support import mirror_rows
from tests.web.api.conftest import personal

pytestmark = pytest.mark.django_db


def queries(call) -> tuple[int, object]:
    """Queries of the call, once the token's last use was recorded (a write once a minute)."""
    call()
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content[:500]
    return len(captured), response


def more_templates(count: int, versions: int = 3) -> None:
    for index in range(count):
        row = mirror_rows.template(f"bulk/t{index:03}")
        for number in range(versions):
            mirror_rows.version(row, f"1.{number}.0", stage="dev", metadata={"tags": ["x"]})


def test_the_template_list_pages_and_filters(alice, world):
    api = personal(alice, ["read"])

    everything = api.get("/templates").json()
    staged = api.get("/templates", {"stage": "staging"}).json()
    found = api.get("/templates", {"q": "fare"}).json()
    folder = api.get("/templates", {"folder": "team"}).json()

    assert [t["name"] for t in everything["items"]] == ["team/farewell", "team/greeting"]
    greeting = everything["items"][1]
    assert (greeting["production"], greeting["staging"], greeting["latest"]) == (
        "1.0.0",
        "1.1.0",
        "1.2.0",
    )
    assert greeting["version_count"] == 3
    assert [t["name"] for t in staged["items"]] == ["team/greeting"]
    assert [t["name"] for t in found["items"]] == ["team/farewell"]
    assert folder["count"] == 2 and everything["next_page"] is None


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"stage": "live"}, "query.stage", "'dev', 'staging', 'production' or 'archived'"),
        ({"tag": 'a"b'}, "tag", "letters, digits"),
        ({"page": "0"}, "query.page", "at least 1"),
        ({"page": "9"}, "page", "past the last page"),
        ({"page": "x"}, "query.page", "a whole number"),
    ],
)
def test_a_bad_query_is_a_problem_naming_the_parameter(alice, world, query, field, words):
    response = personal(alice, ["read"]).get("/templates", query)

    assert response.status_code in (400, 422)
    assert response["Content-Type"] == "application/problem+json"
    error = response.json()["errors"][0]
    assert error["field"] == field
    assert words in f"{error['message']} {error.get('accepted')} {response.json()['detail']}"


def test_the_template_list_makes_a_fixed_number_of_queries(alice, world):
    api = personal(alice, ["read"])
    few, _ = queries(lambda: api.get("/templates"))
    more_templates(30)

    many, response = queries(lambda: api.get("/templates"))

    assert response.json()["count"] == 32
    assert few == many
    assert many <= 6  # the token, count, page, figures, versions, requests


def test_a_version_shows_its_text_metadata_variables_hash_and_checks(alice, world):
    body = personal(alice, ["read"]).get("/templates/team/greeting/-/versions/1.1.0").json()

    assert body["template"] == "team/greeting" and body["stage"] == "staging"
    assert body["text"] == "Hello {who}, from {place}"
    assert body["variables"] == ["who", "place"]
    assert len(body["content_sha256"]) == 64 and body["metadata"]["purpose"] == "greets people"
    assert body["checks"] is None


def test_a_version_and_a_template_make_a_fixed_number_of_queries(alice, world):
    api = personal(alice, ["read"])
    version_few, _ = queries(lambda: api.get("/templates/team/greeting/-/versions/1.1.0"))
    detail_few, _ = queries(lambda: api.get("/templates/team/greeting"))
    for number in range(3, 40):
        mirror_rows.version(world["greeting"], f"1.{number}.0")

    version_many, _ = queries(lambda: api.get("/templates/team/greeting/-/versions/1.1.0"))
    detail_many, detail = queries(lambda: api.get("/templates/team/greeting"))

    assert version_few == version_many
    assert detail_few == detail_many
    assert len(detail.json()["versions"]) == 40


def test_an_unknown_version_or_template_is_404(alice, world):
    api = personal(alice, ["read"])

    missing = api.get("/templates/team/greeting/-/versions/9.9.9")
    no_template = api.get("/templates/team/none")
    bad_name = api.get("/templates/team//x")

    assert missing.status_code == 404 and "no version '9.9.9'" in missing.json()["detail"]
    assert no_template.status_code == 404
    assert bad_name.status_code in (400, 404)


def test_the_diff_is_the_diff_page_s_comparison(alice, world):
    api = personal(alice, ["read"])

    body = api.get("/templates/team/greeting/-/diff", {"from": "1.0.0", "to": "1.1.0"}).json()
    count, _ = queries(
        lambda: api.get("/templates/team/greeting/-/diff", {"from": "1.0.0", "to": "1.1.0"})
    )
    missing = api.get("/templates/team/greeting/-/diff", {"from": "1.0.0", "to": "3.0.0"})

    assert body["template_diff"]["variables_added"] == ["place"]
    assert body["template_diff"]["breaks_callers"] is True
    assert {k: body[k] for k in ("template_diff", "metadata_diff", "bump")} == compare_templates(
        "Hi {who}",
        "Hello {who}, from {place}",
        old_metadata=mirror_rows.METADATA | {"author": "writer"},
        new_metadata=mirror_rows.METADATA | {"author": "writer"},
        old_version="1.0.0",
        new_version="1.1.0",
    )
    assert count <= 3
    assert missing.status_code == 404 and "to='3.0.0'" in missing.json()["detail"]


def test_a_render_uses_the_given_values_and_names_what_is_missing(alice, world):
    api = personal(alice, ["read"])
    path = "/templates/team/greeting/-/versions/1.1.0/render"

    rendered = api.post(path, {"values": {"who": "Ann", "place": "Oslo"}})
    missing = api.post(path, {"values": {"who": "Ann"}})
    wide = api.post(path, {"values": {"who": "Ann", "place": "x" * 2_000_000}})

    assert rendered.json() == {"text": "Hello Ann, from Oslo"}
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "values.place"
    assert wide.status_code == 422


def filed(erin, world, version="1.2.0", target="staging"):
    return reviews.file_request(
        erin, template_name="team/greeting", version=version, target=target, justification="j"
    )


def test_requests_list_filter_and_detail(erin, bob, world):
    request = filed(erin, world)
    reviews.add_comment(bob, request.pk, text="looks fine")
    api = personal(bob, ["read"])

    listed = api.get("/requests", {"status": "open"}).json()
    none = api.get("/requests", {"status": "done"}).json()
    detail = api.get(f"/requests/{request.pk}").json()
    bad = api.get("/requests", {"status": "nope"})

    assert [r["id"] for r in listed["items"]] == [request.pk]
    assert none["count"] == 0
    assert detail["requester"] == "erin" and detail["required_approvals"] >= 1
    assert detail["comments"][0]["text"] == "looks fine" and detail["approvals"] == []
    assert detail["url"] == f"/requests/{request.pk}/"
    assert bad.status_code == 422 and "'open', 'executing'" in bad.json()["errors"][0]["accepted"]
    assert api.get("/requests/999999").status_code == 404


def test_request_list_and_detail_make_a_fixed_number_of_queries(erin, bob, carol, world):
    api = personal(bob, ["read"])
    first = filed(erin, world)
    list_few, _ = queries(lambda: api.get("/requests"))
    detail_few, _ = queries(lambda: api.get(f"/requests/{first.pk}"))
    for number in range(3, 25):
        mirror_rows.version(world["greeting"], f"1.{number}.0")
        filed(erin, world, f"1.{number}.0")
    for reviewer in (bob, carol):
        reviews.add_comment(reviewer, first.pk, text="hm")

    list_many, listed = queries(lambda: api.get("/requests"))
    detail_many, _ = queries(lambda: api.get(f"/requests/{first.pk}"))

    assert listed.json()["count"] == 23
    assert list_few == list_many
    assert detail_few == detail_many


def test_batches_and_their_operations(alice, world):
    batch = mirror_rows.batch(
        "alice",
        {"template_name": "team/new", "version": "1.0.0"},
        {"template_name": "team/new", "version": "1.0.1", "status": "failed", "last_error": "x"},
    )
    api = personal(alice, ["read"])

    listed = api.get("/batches").json()
    detail = api.get(f"/batches/{batch.pk}").json()
    few, _ = queries(lambda: api.get(f"/batches/{batch.pk}"))

    assert [b["id"] for b in listed["items"]] == [batch.pk]
    assert [op["status"] for op in detail["operations"]] == ["pending", "failed"]
    assert detail["operations"][1]["last_error"] == "x"
    assert few <= 4
    assert api.get("/batches/424242").status_code == 404


def test_the_audit_trail_pages_by_event_number_and_filters(alice, bob, world):
    for index in range(60):
        personal(alice, ["read"], name=f"t{index}")
    api = personal(bob, ["read"])

    first = api.get("/audit", {"actor": "alice"}).json()
    second = api.get("/audit", {"actor": "alice", "before": first["next_before"]}).json()
    bad = api.get("/audit", {"source": "nowhere"})

    assert len(first["items"]) == 50 and len(second["items"]) == 10
    assert second["next_before"] is None
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 60
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.source"


def test_the_audit_csv_needs_the_export_permission(alice, bob, world):
    refused = personal(alice, ["read"]).get("/audit.csv")
    exported = personal(bob, ["read"]).get("/audit.csv")

    assert refused.status_code == 403 and "export_auditevent" in refused.json()["detail"]
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert "api_token.created" in b"".join(exported.streaming_content).decode()


def test_pagination_is_stable_while_templates_are_added(alice, world):
    more_templates(60, versions=1)
    api = personal(alice, ["read"])
    first = api.get("/templates", {"folder": "bulk"}).json()
    mirror_rows.template("bulk/zzz-late")  # after the first page's names: no shift
    second = api.get("/templates", {"folder": "bulk", "page": 2}).json()

    names = [t["name"] for t in first["items"] + second["items"]]
    assert len(names) == len(set(names)) == 61
    assert names == sorted(names)


def test_read_needs_no_dashboard_session_and_is_never_cached(alice, world):
    response = personal(alice, ["read"]).get("/templates")

    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda api: api.get("/templates", {"q": "a\x00b"}), "query.q"),
        (lambda api: api.get("/templates/team/greeting/-/versions/1.0.0%00"), "path"),
        (
            lambda api: api.post("/validate", {"files": [{"path": "a.yaml", "content": "\x00"}]}),
            "body.files[0].content",
        ),
    ],
)
def test_a_nul_character_is_refused_before_any_query(alice, world, call, field):
    # PostgreSQL text holds no NUL: found by the fuzz test on PostgreSQL (a 500 before).
    response = call(personal(alice, ["read"]))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
