"""A version's chat messages, model configuration and response format on its mirror row
(TemplateVersion.extra; {} for a text template): its test cases check them.

Rows mirrored before this migration keep {} until the next full sweep, which fills them
from MLflow for versions whose content there is still the registered one (mirror.py).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0015_authorship"),
    ]

    operations = [
        migrations.AddField(
            model_name="templateversion",
            name="extra",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
