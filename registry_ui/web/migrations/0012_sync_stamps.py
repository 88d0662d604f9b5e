"""Scale (issue 20): each template remembers its registered model's MLflow timestamp as last
read in full, so the incremental sync reads only the models whose timestamp moved."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0010_check_comparisons"),
    ]

    operations = [
        migrations.AddField(
            model_name="template",
            name="mlflow_updated_ms",
            field=models.BigIntegerField(blank=True, db_index=True, null=True),
        ),
    ]
