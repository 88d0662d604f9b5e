"""Audit security (issue 16): each event names the key its hash was made with, on
PostgreSQL a trigger refuses TRUNCATE of the audit trail, and MLflow webhook deliveries
already accepted are remembered so a replay is refused.

Events already written keep their plain SHA-256 hashes and an empty key_id: nothing is
re-hashed, so their hashes stay what any copy of the head taken before says. The verifier
accepts unkeyed events only at the chain's beginning (registry_ui.web.audit.trail).
"""

from django.db import migrations, models

TABLE = "registry_web_auditevent"
TRIGGER = "auditevent_no_truncate"
FUNCTION = "registry_web_auditevent_refuse_truncate"
# Test suites empty every table with TRUNCATE between tests: they set this for their own
# sessions (tests/conftest.py). Any role that may TRUNCATE may also set it, so the trigger
# stops mistakes (a `manage.py flush`, a stray TRUNCATE), not the table's owner, who can drop
# it: the keyed chain and the published heads are what catch a determined one.
ALLOW_SETTING = "registry_ui.allow_audit_truncate"

CREATE_TRIGGER = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{ALLOW_SETTING}', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: TRUNCATE of % refused', TG_TABLE_NAME
        USING HINT = 'audit events are only ever inserted (docs/security.md, "Audit trail '
                     'integrity")';
END;
$$;
CREATE TRIGGER {TRIGGER} BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
"""
DROP_TRIGGER = f"""
DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE};
DROP FUNCTION IF EXISTS {FUNCTION}();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0008_mlflow_problems"),
    ]

    operations = [
        # A constant default: PostgreSQL adds the column without rewriting (or updating) a
        # row, so the trigger refusing UPDATE stays quiet.
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("delivery_id", models.CharField(max_length=200, unique=True)),
                ("received_at", models.DateTimeField(db_index=True)),
            ],
            options={"ordering": ["-received_at"]},
        ),
    ]
