"""Scale (issue 20): each template remembers its registered model's MLflow timestamp as last
read in full, so the incremental sync reads only the models whose timestamp moved; indexes
keep the template page (its requests' audit events) and every page's count of open requests
flat in the size of the audit trail and of the requests' history."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0012_native_prompts"),
    ]

    operations = [
        migrations.AddField(
            model_name="template",
            name="mlflow_updated_ms",
            field=models.BigIntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("object_type", "promotion_request")),
                fields=["object_id"],
                name="audit_request_events",
            ),
        ),
        migrations.AddIndex(
            model_name="promotionrequest",
            index=models.Index(fields=["status", "created_at"], name="request_status_created"),
        ),
    ]
