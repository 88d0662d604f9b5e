"""Audit events get the source `api`: changes made through the HTTP API (issue 19),
no longer recorded as `command`. Events written before keep their source."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0016_version_extra"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="source",
            field=models.CharField(
                choices=[
                    ("dashboard", "Dashboard"),
                    ("worker", "Worker"),
                    ("external", "External"),
                    ("command", "Command"),
                    ("api", "API"),
                ],
                max_length=12,
            ),
        ),
    ]
