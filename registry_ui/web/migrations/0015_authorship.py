"""Authorship bound to accounts (docs/security.md, "Authorship").

A version's metadata author is kept as the account it resolved to, or marked unresolved; a
CI account's batch names the person who asked for it, and so does each version it wrote. The
register_on_behalf permission marks CI accounts (the ci group; registry_ui.web.auth.roles).
Versions mirrored before this keep their author as written; those naming no account are
marked unresolved here (the four-eyes rule refuses every name in them either way)."""

from django.db import migrations, models

PERMISSIONS = [
    ("request_promotion", "Can request promotions and releases"),
    ("approve_promotion", "Can approve or reject promotion requests"),
    ("rollback_production", "Can roll production back"),
    ("comment_request", "Can comment on promotion requests"),
    ("register_version", "Can register template versions"),
    ("register_on_behalf", "Registers versions on behalf of a person (CI accounts)"),
]


def mark_unresolved_authors(apps, schema_editor):
    User = apps.get_model("auth", "User")
    TemplateVersion = apps.get_model("registry_web", "TemplateVersion")
    usernames = {name.casefold() for name in User.objects.values_list("username", flat=True)}
    written = TemplateVersion.objects.exclude(author="").values_list("author", flat=True)
    unresolved = {a for a in written.distinct() if a.casefold() not in usernames}
    if unresolved:
        TemplateVersion.objects.filter(author__in=unresolved).update(author_unresolved=True)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("registry_web", "0014_api_tokens"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="promotionrequest",
            options={"ordering": ["-created_at", "-id"], "permissions": PERMISSIONS},
        ),
        migrations.AddField(
            model_name="batch",
            name="on_behalf_of",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.AddField(
            model_name="templateversion",
            name="author_unresolved",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="templateversion",
            name="requested_by",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.RunPython(mark_unresolved_authors, migrations.RunPython.noop),
    ]
