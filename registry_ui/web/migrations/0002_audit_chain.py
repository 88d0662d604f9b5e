"""Seal the audit trail: a hash chain over every event, and (PostgreSQL) a trigger refusing
UPDATE and DELETE. Events already written are chained first, in id order."""

import hashlib
import json
from datetime import UTC
from decimal import Decimal

from django.db import migrations, models
from django.db.models import Q

TABLE = "registry_web_auditevent"
TRIGGER = "auditevent_append_only"
FUNCTION = "registry_web_auditevent_refuse_change"

# Row level, so TRUNCATE still works: pytest-django empties PostgreSQL tables with it.
CREATE_TRIGGER = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % of audit event % refused', TG_OP, OLD.id
        USING HINT = 'audit events are only ever inserted (docs/deploy.md, "Audit trail")';
END;
$$;
CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {FUNCTION}();
"""
DROP_TRIGGER = f"""
DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE};
DROP FUNCTION IF EXISTS {FUNCTION}();
"""


# The hash format the app verifies with (a stored contract, never changed), copied here so
# the migration does not import live code: registry_ui/web/audit/trail.py has the same.
GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "source",
    "prev_hash",
)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(values):
    document = {name: values[name] for name in HASHED_FIELDS}
    document["at"] = values["at"].astimezone(UTC).isoformat(timespec="microseconds")
    document["before"] = _canonical_numbers(values["before"])
    document["after"] = _canonical_numbers(values["after"])
    text = _CANONICAL_JSON.encode(document)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _canonical_numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(item) for item in value]
    return value


def chain_existing_events(apps, schema_editor):
    AuditEvent = apps.get_model("registry_web", "AuditEvent")
    events = AuditEvent.objects.using(schema_editor.connection.alias)
    prev_hash, chained = GENESIS_HASH, []
    for seq, event in enumerate(events.order_by("id").iterator(chunk_size=2000), start=1):
        event.seq, event.prev_hash = seq, prev_hash
        event.hash = prev_hash = event_hash({f: getattr(event, f) for f in HASHED_FIELDS})
        chained.append(event)
    events.bulk_update(chained, ["seq", "prev_hash", "hash"], batch_size=1000)


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0001_initial"),
    ]

    operations = [
        # Nullable first: existing rows are chained before the columns become unique.
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64, null=True),
        ),
        # record_many() sets `at` before hashing; auto_now_add would overwrite it on insert.
        migrations.AlterField(
            model_name="auditevent",
            name="at",
            field=models.DateTimeField(db_index=True),
        ),
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AlterModelOptions(
            name="auditevent",
            options={
                "ordering": ["seq"],
                "permissions": [("export_auditevent", "Can export the audit trail")],
            },
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=Q(object_type="template_version"),
                fields=["object_id"],
                name="audit_version_events",
                opclasses=["varchar_pattern_ops"],
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=Q(action="request.executed"),
                fields=["seq"],
                name="audit_executed_requests",
            ),
        ),
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
