"""Template.changed_at: when its newest version was registered (the row's creation while
it has none with a time), kept by the mirror, indexed with the name: the list sorted by last
change reads one index instead of every template's versions (issue 20). Filled here."""

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce


def fill(apps, schema_editor):
    Template = apps.get_model("registry_web", "Template")
    TemplateVersion = apps.get_model("registry_web", "TemplateVersion")
    newest = Subquery(
        TemplateVersion.objects.filter(template=OuterRef("pk"), created_at__isnull=False)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    Template.objects.update(changed_at=Coalesce(newest, F("created_at")))


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0017_audit_source_api"),
    ]

    operations = [
        migrations.AddField(
            model_name="template",
            name="changed_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddIndex(
            model_name="template",
            index=models.Index(fields=["-changed_at", "name"], name="template_changed"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
