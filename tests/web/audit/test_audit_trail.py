"""The audit trail: append-only, hash-chained under a key, verifiable against the heads
published outside the database, exportable, and able to say what was in production when.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL set (as in CI), where the
triggers refusing UPDATE, DELETE and TRUNCATE and the concurrent appends are exercised too.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from registry_ui.web.audit import export as audit_export
from registry_ui.web.audit import history as audit_history
from registry_ui.web.audit import keys, trail
from registry_ui.web.models import AppendOnlyError, AuditEvent

pytestmark = pytest.mark.django_db

TABLE = AuditEvent._meta.db_table
TRIGGER = "auditevent_append_only"  # created by migration 0002 on PostgreSQL
on_postgresql = connection.vendor == "postgresql"


def record(object_id: str = "shop/hook@1.0.0", **fields) -> AuditEvent:
    values = {
        "actor": "alice",
        "action": "version.registered",
        "object_type": "template_version",
        "object_id": object_id,
        "source": AuditEvent.Source.DASHBOARD,
        "after": {"stage": "dev"},
        **fields,
    }
    return trail.record(**values)


def unsaved(object_id: str, **fields) -> AuditEvent:
    return AuditEvent(
        actor=fields.pop("actor", "bob"),
        action=fields.pop("action", "version.stage_changed"),
        object_type=fields.pop("object_type", "template_version"),
        object_id=object_id,
        source=fields.pop("source", AuditEvent.Source.WORKER),
        **fields,
    )


def verify() -> str:
    out = io.StringIO()
    call_command("verify_audit_log", stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_log", stdout=io.StringIO())
    assert failure.value.returncode == 1
    return str(failure.value)


def tamper(sql: str, params: list) -> None:
    """Change audit rows behind the application's back, as the table owner could."""
    with connection.cursor() as cursor:
        if on_postgresql:
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
        cursor.execute(sql, params)


# -- the chain -------------------------------------------------------------------------------


def test_it_chains_each_event_to_the_one_before_it():
    first = record()
    batch = trail.record_many([unsaved("shop/hook@1.0.0"), unsaved("shop/hook@1.1.0")])
    last = record("shop/hook@1.2.0")

    events = list(AuditEvent.objects.all())
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.pk for e in events] == [first.pk, batch[0].pk, batch[1].pk, last.pk]
    assert events[0].prev_hash == "0" * 64
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert len({e.hash for e in events}) == 4
    assert batch[0].at == batch[1].at  # one append, one moment
    assert first.at <= batch[0].at <= last.at


def test_it_hashes_json_exactly_as_the_database_gives_it_back():
    moment = datetime(2026, 11, 28, 14, 30, 0, 123456, tzinfo=UTC)
    token = uuid.uuid4()

    event = record(
        before={"when": moment, "id": token, "price": Decimal("1.10")},
        after={"big": 1e20, "ratio": 0.1, "whole": 2.0, "tags": ("a", "b"), "text": "é 🔥"},
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.before == {"when": "2026-11-28T14:30:00.123Z", "id": str(token), "price": "1.10"}
    assert stored.after["tags"] == ["a", "b"]
    assert "audit trail OK: 1 events checked" in verify()


def test_verify_audit_log_reports_an_intact_chain():
    record()
    trail.record_many([unsaved(f"shop/hook@1.0.{n}") for n in range(5)])

    output = verify()

    assert output.startswith("audit trail OK: 6 events checked (seq 1 to 6), head hash ")
    assert AuditEvent.objects.get(seq=6).hash in output


def test_verify_audit_log_accepts_an_empty_trail():
    assert verify().startswith("audit trail OK: 0 events checked")


def test_it_detects_a_row_changed_with_raw_sql_naming_that_row():
    record(), record(actor="bob"), record()
    changed = AuditEvent.objects.get(seq=2)
    if on_postgresql:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"UPDATE {TABLE} SET actor = 'mallory' WHERE id = %s", [changed.pk])
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [changed.pk])

    tamper(f"UPDATE {TABLE} SET actor = 'mallory' WHERE id = %s", [changed.pk])

    problem = verify_fails()
    assert f"content hash mismatch at event id {changed.pk} (seq 2)" in problem
    assert "1 events before it check out" in problem


def test_it_detects_a_row_rewritten_with_a_fresh_hash_at_the_next_link():
    # Even someone holding the key cannot rewrite one row without breaking the next link.
    record(), record(), record()
    rewritten = AuditEvent.objects.get(seq=2)
    values = {f: getattr(rewritten, f) for f in trail.KEYED_FIELDS} | {"actor": "mallory"}

    tamper(
        f"UPDATE {TABLE} SET actor = %s, hash = %s WHERE id = %s",
        ["mallory", trail.event_hash(values, key=keys.signing_key().secret), rewritten.pk],
    )

    problem = verify_fails()
    next_event = AuditEvent.objects.get(seq=3)
    assert f"prev-hash mismatch at event id {next_event.pk} (seq 3)" in problem
    assert f"event id {rewritten.pk} (seq 2)" in problem


def test_it_detects_a_deleted_middle_row():
    record(), record(), record(), record()
    deleted = AuditEvent.objects.get(seq=2)
    after_it = AuditEvent.objects.get(seq=3)

    tamper(f"DELETE FROM {TABLE} WHERE id = %s", [deleted.pk])

    problem = verify_fails()
    assert f"gap before event id {after_it.pk} (seq 3): seq 2 missing" in problem


# -- the key and the published heads (issue 16, finding 5) -----------------------------------


def unkeyed_hash(event: dict) -> str:
    """The chain's hash as it was before it had a key: anyone can compute it."""
    document = {name: event[name] for name in trail.HASHED_FIELDS}
    document["at"] = event["at"].astimezone(UTC).isoformat(timespec="microseconds")
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def recompute_from(seq: int, **changes) -> None:
    """What someone with only the database can do: change a row, then re-hash it and every
    link after it the way the chain is documented to be hashed (without the key)."""
    prev_hash = AuditEvent.objects.get(seq=seq - 1).hash if seq > 1 else trail.GENESIS_HASH
    rows = AuditEvent.objects.filter(seq__gte=seq).order_by("seq")
    for event in list(rows.values("id", *trail.HASHED_FIELDS)):
        edits = changes if event["seq"] == seq else {}
        event |= edits | {"prev_hash": prev_hash}
        prev_hash = unkeyed_hash(event)
        assignments = ", ".join([*(f"{name} = %s" for name in edits), "prev_hash = %s, hash = %s"])
        tamper(
            f"UPDATE {TABLE} SET {assignments} WHERE id = %s",
            [*edits.values(), event["prev_hash"], prev_hash, event["id"]],
        )


@pytest.fixture
def head_file(settings, tmp_path):
    settings.AUDIT_HEAD_FILE = str(tmp_path / "audit-heads.jsonl")
    return tmp_path / "audit-heads.jsonl"


def publish() -> str:
    out = io.StringIO()
    call_command("publish_audit_head", stdout=out)
    return out.getvalue()


def test_a_chain_re_hashed_without_the_key_after_an_edit_does_not_check_out():
    record(), record(actor="bob"), record(), record()
    edited = AuditEvent.objects.get(seq=2)

    recompute_from(2, actor="mallory")

    problem = verify_fails()
    assert f"content hash mismatch at event id {edited.pk} (seq 2)" in problem
    assert "1 events before it check out" in problem
    # It says which row, never the keyed hash its new content would need.
    values = {f: getattr(AuditEvent.objects.get(seq=2), f) for f in trail.KEYED_FIELDS}
    assert trail.event_hash(values, key=keys.signing_key().secret) not in problem


def test_each_event_names_the_key_that_hashed_it():
    event = record()

    assert event.key_id == keys.key_id(keys.signing_key().secret.decode())
    assert len(event.key_id) == 16
    assert f"keyed with key id {event.key_id}" in verify()


def test_deleting_the_newest_events_is_caught_by_a_head_given_on_the_command_line():
    record(), record(), record()
    head = AuditEvent.objects.get(seq=3).hash

    tamper(f"DELETE FROM {TABLE} WHERE seq = 3", [])

    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_log", "--expect-head", head, stdout=io.StringIO())
    assert f"the expected head {head} is not in the chain" in str(failure.value)


def test_an_expected_head_still_in_the_chain_checks_out():
    record(), record()
    head = AuditEvent.objects.get(seq=2).hash
    record()

    out = io.StringIO()
    call_command("verify_audit_log", "--expect-head", head, "--heads-file", "", stdout=out)

    assert out.getvalue().startswith("audit trail OK: 3 events checked")
    assert "1 expected head(s) found unchanged" in out.getvalue()


def test_deleting_the_newest_events_is_caught_by_the_published_head(head_file):
    record(), record(), record()
    assert publish().startswith("published: seq 3, hash ")

    tamper(f"DELETE FROM {TABLE} WHERE seq >= 2", [])

    problem = verify_fails()
    assert "events missing at the end: the chain ends at seq 1" in problem
    assert f"but the head published at {json.loads(head_file.read_text())['at']}" in problem
    assert "was seq 3" in problem


def test_emptying_the_trail_is_caught_by_the_published_head(head_file):
    record(), record()
    publish()

    tamper(f"DELETE FROM {TABLE}", [])

    problem = verify_fails()
    assert "events missing at the end: the chain is empty" in problem


def test_a_chain_rebuilt_without_the_key_is_caught_at_the_published_head(head_file):
    record(), record()
    publish()
    second = AuditEvent.objects.get(seq=2)

    # Every event made "from before the key" and re-hashed from the first, as anyone can.
    tamper(f"UPDATE {TABLE} SET key_id = ''", [])
    recompute_from(1, actor="mallory")

    problem = verify_fails()
    assert f"published head mismatch at event id {second.pk} (seq 2)" in problem
    assert f"had hash {second.hash}" in problem


def test_heads_are_published_once_per_move_and_each_one_is_checked(head_file):
    record()
    publish()
    assert publish().startswith("nothing new: the head is still seq 1")
    record(), record()
    publish()

    lines = [json.loads(line) for line in head_file.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 3]
    assert [line["hash"] for line in lines] == [
        AuditEvent.objects.get(seq=1).hash,
        AuditEvent.objects.get(seq=3).hash,
    ]
    assert "2 published heads in " in verify()


def test_a_head_is_not_published_for_a_chain_that_does_not_check_out(head_file):
    record()
    publish()
    record(), record()
    tamper(f"UPDATE {TABLE} SET actor = 'mallory' WHERE seq = 2", [])

    with pytest.raises(CommandError, match="head NOT published, the audit trail is BROKEN"):
        publish()

    assert len(head_file.read_text().splitlines()) == 1


def test_beat_publishes_the_head_every_few_minutes(head_file, settings):
    from registry_ui.web.audit.tasks import publish_audit_head

    record(), record()

    assert publish_audit_head() == 2
    assert json.loads(head_file.read_text())["seq"] == 2
    scheduled = settings.CELERY_BEAT_SCHEDULE["publish-audit-head"]
    assert scheduled == {"task": publish_audit_head.name, "schedule": 300.0}


def test_a_malformed_head_file_is_named(head_file):
    record()
    head_file.write_text('{"at": "2026-12-01T10:00:00+00:00", "seq": 1}\n')

    with pytest.raises(CommandError, match="line 1 is not a published head"):
        call_command("verify_audit_log", stdout=io.StringIO())


def legacy(count: int) -> None:
    """Events as the chain had them before it had a key (migration 0002's format)."""
    prev_hash = trail.GENESIS_HASH
    for seq in range(1, count + 1):
        event = AuditEvent(
            seq=seq,
            at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seq),
            actor="alice",
            action="version.registered",
            object_type="template_version",
            object_id=f"old/hook@1.0.{seq}",
            source="dashboard",
            prev_hash=prev_hash,
            key_id="",
        )
        event.hash = prev_hash = unkeyed_hash({f: getattr(event, f) for f in trail.HASHED_FIELDS})
        event.save()


def test_events_written_before_the_chain_had_a_key_still_verify():
    legacy(2)
    record()

    output = verify()

    assert output.startswith("audit trail OK: 3 events checked (seq 1 to 3)")
    assert "seq 1 to 2: written before the chain had a key" in output
    assert AuditEvent.objects.get(seq=3).prev_hash == AuditEvent.objects.get(seq=2).hash


def test_an_unkeyed_event_after_keyed_ones_is_refused():
    legacy(1)
    record(), record()
    last = AuditEvent.objects.get(seq=3)
    values = {f: getattr(last, f) for f in trail.HASHED_FIELDS}

    tamper(
        f"UPDATE {TABLE} SET key_id = '', hash = %s WHERE id = %s",
        [unkeyed_hash(values), last.pk],
    )

    assert f"unkeyed event at event id {last.pk} (seq 3) after keyed events" in verify_fails()


def test_a_rotated_key_verifies_the_events_it_hashed_while_it_is_an_old_key(settings):
    first_key = settings.AUDIT_HMAC_KEY
    record()
    settings.AUDIT_HMAC_KEY = "a-new-audit-key-" + "n" * 32
    settings.AUDIT_HMAC_OLD_KEYS = [first_key]
    record()

    output = verify()
    old_id, new_id = keys.key_id(first_key), keys.key_id(settings.AUDIT_HMAC_KEY)
    assert f"keyed with key id {old_id}, {new_id}" in output

    settings.AUDIT_HMAC_OLD_KEYS = []
    problem = verify_fails()
    assert f"unknown key at event id {AuditEvent.objects.get(seq=1).pk} (seq 1)" in problem
    assert f"its key id {old_id} is neither AUDIT_HMAC_KEY's" in problem


def test_no_event_is_written_without_a_key(settings):
    settings.AUDIT_HMAC_KEY = ""

    with pytest.raises(Exception, match="AUDIT_HMAC_KEY is not set"):
        record()
    assert not AuditEvent.objects.exists()


@pytest.mark.skipif(not on_postgresql, reason="TRUNCATE and its trigger are PostgreSQL's")
def test_the_database_refuses_to_truncate_the_trail():
    record()

    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # As any session but a test suite's (tests/conftest.py allows it for the flush).
        cursor.execute("SET LOCAL registry_ui.allow_audit_truncate = 'off'")
        cursor.execute(f"TRUNCATE {TABLE}")

    assert AuditEvent.objects.count() == 1


# -- append-only in the application ----------------------------------------------------------


def test_the_orm_refuses_to_update_or_delete_events():
    event = record()

    with pytest.raises(AppendOnlyError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(actor="mallory")
    with pytest.raises(AppendOnlyError, match="append-only"):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError, match="append-only"), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["actor"])
    event.actor = "mallory"
    with pytest.raises(AppendOnlyError, match="append-only"):
        event.save()
    with pytest.raises(AppendOnlyError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).actor == "alice"


def test_events_are_only_written_through_the_audit_module():
    with pytest.raises(AppendOnlyError, match=r"audit\.trail\.record\(\)"):
        AuditEvent.objects.create(
            actor="alice", action="x", object_type="t", object_id="1", source="command"
        )


def test_the_admin_shows_events_but_cannot_add_change_or_delete_them(admin_client):
    event = record()
    model_admin = admin_site.get_model_admin(AuditEvent)
    request = type("Request", (), {"user": User.objects.get(username="admin")})()

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert admin_client.get("/admin/registry_web/auditevent/").status_code == 200
    assert admin_client.get("/admin/registry_web/auditevent/add/").status_code == 403
    page = admin_client.get(f"/admin/registry_web/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get(f"/admin/registry_web/auditevent/{event.pk}/delete/").status_code == 403


# -- the CSV export --------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


def test_the_csv_export_neutralises_cells_a_spreadsheet_would_run():
    for formula in FORMULAS:
        record(actor=formula, object_id="shop/hook@1.0.0")
    record(actor="plain", after=-5)

    text = "".join(audit_export.csv_lines(AuditEvent.objects.order_by("seq")))

    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 7
    assert [row["actor"] for row in rows[:6]] == [f"'{formula}" for formula in FORMULAS]
    assert (rows[6]["actor"], rows[6]["after"]) == ("plain", "'-5")
    assert rows[0]["after"] == '{"stage": "dev"}'
    assert rows[0]["seq"] == "1" and len(rows[0]["hash"]) == 64


def exporter(permitted: bool) -> User:
    user = User.objects.create_user(f"reviewer-{uuid.uuid4().hex[:6]}")
    if permitted:
        user.user_permissions.add(
            Permission.objects.get(
                codename="export_auditevent", content_type__app_label="registry_web"
            )
        )
    return user


def test_the_export_view_asks_anonymous_visitors_to_sign_in(client):
    response = client.get("/audit/export.csv")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_export_view_refuses_users_without_the_export_permission(client):
    client.force_login(exporter(permitted=False))

    assert client.get("/audit/export.csv").status_code == 403


def test_the_export_view_streams_the_trail_as_a_dated_csv(client):
    record(actor="=cmd")
    client.force_login(exporter(permitted=True))

    response = client.get("/audit/export.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert response["Content-Disposition"] == f'attachment; filename="audit-{today}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["actor"] == "'=cmd"  # (signing in may be audited after it)


def test_the_export_view_filters_by_template_and_time(client):
    record("shop/hook@1.0.0")
    record("shop/hook-extra@1.0.0")
    record(
        "17",
        action="request.executed",
        object_type="promotion_request",
        after={"template": "shop/hook", "version": "1.0.0"},
    )
    client.force_login(exporter(permitted=True))

    response = client.get("/audit/export.csv?template=shop/hook&since=2000-01-01&until=2999-12-31")
    later = client.get("/audit/export.csv?since=2999-01-01T00:00:00Z")

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["object_id"] for row in rows] == ["shop/hook@1.0.0", "17"]
    assert b"".join(later.streaming_content).decode().splitlines() == [
        ",".join(audit_export.CSV_COLUMNS)
    ]


def test_the_export_view_filters_by_actor_action_and_source_as_the_page_does(client):
    record("shop/hook@1.0.0", actor="alice")
    record("shop/hook@1.0.1", actor="bob", source=AuditEvent.Source.COMMAND)
    record("17", actor="bob", action="request.filed", object_type="promotion_request")
    record("18", actor="bob", action="request.approved", object_type="promotion_request")
    client.force_login(exporter(permitted=True))

    def object_ids(query: str) -> list[str]:
        response = client.get(f"/audit/export.csv?{query}")
        assert response.status_code == 200, response.content
        rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
        return [row["object_id"] for row in rows]

    assert object_ids("actor=bob") == ["shop/hook@1.0.1", "17", "18"]
    assert object_ids("actor=bob&action=request.") == ["17", "18"]  # a prefix
    assert object_ids("action=request.approved") == ["18"]
    # (Making the exporter is audited too, from the command line: "system", "command".)
    assert object_ids("source=command&actor=bob") == ["shop/hook@1.0.1"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("source=mlflow", "source 'mlflow' is not one of: dashboard, worker, external, command"),
        ("actor=" + "x" * 151, "actor is longer than 150 characters"),
        ("since=yesterday", "since='yesterday' is not understood: since takes an ISO 8601 date"),
        ("until=2026-13-01", "until='2026-13-01' is not a real date"),
        ("since=2026-11-02&until=2026-11-01", "is not before until"),
        ("template=a//b", "segment 2 '(empty)' is not accepted"),
        ("tempalte=shop/hook", "unknown filter tempalte"),
    ],
)
def test_the_export_view_says_what_is_accepted_when_a_filter_is_wrong(client, query, message):
    client.force_login(exporter(permitted=True))

    response = client.get(f"/audit/export.csv?{query}")

    assert response.status_code == 400
    assert message in response.text
    assert "accepted filters: template=NAME, actor=USERNAME, action=ACTION" in response.text


# -- what was in production when -------------------------------------------------------------


def move(version: str, before: str, after: str, **fields) -> AuditEvent:
    return unsaved(
        f"shop/hook@{version}", before={"stage": before}, after={"stage": after}, **fields
    )


def test_it_tells_which_version_was_in_production_when_who_moved_it_and_why():
    record("shop/hook@1.0.0"), record("shop/hook@1.1.0")
    # Moved in MLflow directly: no request explains it.
    external = trail.record_many(
        [
            move("1.0.0", "dev", "staging", actor="mlflow", source="external"),
            move("1.0.0", "staging", "production", actor="mlflow", source="external"),
        ]
    )[-1]
    # A look-alike name must not leak into shop/hook's answers.
    trail.record_many(
        [
            unsaved(
                "shop/hook-extra@9.0.0",
                before=None,
                after={"stage": "production"},
                action="version.registered",
            )
        ]
    )
    # An approved request carried out by a worker: the stage moves, then request.executed.
    # The history reads the template's own requests' events, so the request is a real row.
    from registry_ui.web.models import PromotionRequest
    from tests.support.mirror_rows import template, version
    from tests.support.users import member

    row = version(template("shop/hook"), "1.1.0", stage="production")
    PromotionRequest.objects.create(
        id=42,
        template=row.template,
        version=row,
        content_sha256=row.content_sha256,
        from_stage="staging",
        target_stage="production",
        requester=member("alice", "authors"),
        justification="better hook, +12% CTR in the A/B test",
        required_approvals=2,
        status="done",
    )
    requested = trail.record_many(
        [move("1.0.0", "production", "archived"), move("1.1.0", "staging", "production")]
    )[-1]
    record(
        "42",
        actor="bob",
        action="request.executed",
        object_type="promotion_request",
        source="worker",
        after={
            "template": "shop/hook",
            "version": "1.1.0",
            "target_stage": "production",
            "requested_by": "alice",
            "approved_by": ["carol", "dave"],
            "justification": "better hook, +12% CTR in the A/B test",
            "kind": "promote",
        },
    )
    retired = trail.record_many([move("1.1.0", "production", "archived")])[0]
    a_moment = timedelta(microseconds=1)

    assert audit_history.production_at("shop/hook", external.at - a_moment) is None
    assert audit_history.production_at("shop/hook", external.at) == {
        "version": "1.0.0",
        "since": external.at,
        "moved_by": "mlflow",
        "source": "external",
        "why": None,
        "request_id": None,
        "approved_by": [],
    }
    assert audit_history.production_at("shop/hook", requested.at) == {
        "version": "1.1.0",
        "since": requested.at,
        "moved_by": "bob",
        "source": "worker",
        "why": "better hook, +12% CTR in the A/B test",
        "request_id": 42,
        "approved_by": ["carol", "dave"],
    }
    assert audit_history.production_at("shop/hook", retired.at) is None
    history = audit_history.production_history("shop/hook")
    assert [(p["version"], p["since"], p["until"]) for p in history] == [
        ("1.0.0", external.at, requested.at),
        ("1.1.0", requested.at, retired.at),
    ]
    assert audit_history.production_at("shop/hook-extra", retired.at)["version"] == "9.0.0"


def test_audit_production_prints_one_line():
    moved = trail.record_many([move("2.0.0", "staging", "production", actor="carol")])[0]
    out = io.StringIO()
    at = (moved.at + timedelta(seconds=1)).isoformat()

    call_command("audit_production", "shop/hook", "--at", at, stdout=out)
    call_command("audit_production", "shop/hook", "--at", "2000-01-01", stdout=out)

    first, second = out.getvalue().splitlines()
    assert "shop/hook at " in first
    assert ": 2.0.0 in production since " in first
    assert "moved by carol (worker), no approved request" in first
    assert second == "shop/hook at 2000-01-01T00:00:00+00:00: no version was in production"


def test_audit_production_explains_a_bad_date():
    with pytest.raises(CommandError, match="--at takes an ISO 8601 date or date-time"):
        call_command("audit_production", "shop/hook", "--at", "last tuesday")


# -- concurrent writers ----------------------------------------------------------------------


@pytest.mark.skipif(
    not on_postgresql,
    reason="needs PostgreSQL (DATABASE_URL): its advisory lock is what serialises appends; "
    "SQLite serialises whole write transactions",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_unbroken_chain():
    writers, appends = 8, 20
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(appends):
                with transaction.atomic():
                    if i % 2:
                        trail.record_many([unsaved(f"w{n}@{i}.0.0"), unsaved(f"w{n}@{i}.0.1")])
                    else:
                        record(f"w{n}@{i}.0.0")
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    total = writers * (appends // 2) * 3
    check = trail.verify_chain()
    assert (check.ok, check.checked, check.head_seq) == (True, total, total), check.problem
    assert AuditEvent.objects.values("object_id").distinct().count() == total
