"""Load the demo users and templates on the first run (make run calls this every time)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from registry_ui.core.errors import RegistryError
from registry_ui.web.demo import DEMO_TEMPLATES, DEMO_USERS

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"


class Command(BaseCommand):
    help = "Create demo users and register demo templates in every stage (first run only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="load again even if demo users exist"
        )

    def handle(self, *args, force: bool = False, **options):
        User = get_user_model()
        if not force and User.objects.filter(username=DEMO_USERS[0][0]).exists():
            self.stdout.write(
                f"Demo data already loaded; the demo sign-ins are in {CREDENTIALS_FILE}"
            )
            return
        try:
            counts = load_demo_templates()
        except RegistryError as error:
            raise CommandError(f"could not register the demo templates: {error}") from error
        # Users last: their existence marks a completed first run.
        credentials = self._create_users(User)
        self._save_credentials(credentials)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {counts['templates']} templates, {counts['versions']} versions in "
                "dev, staging, production and archived."
            )
        )
        self.stdout.write(f"Demo sign-ins (also saved in {CREDENTIALS_FILE}):")
        for username, role, password in credentials:
            self.stdout.write(f"  {username:<8} {password:<16} {role}")

    @transaction.atomic
    def _create_users(self, User):
        credentials = []
        for username, role, is_admin in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username)
            user.email = f"{username}@example.com"
            user.is_staff = user.is_superuser = is_admin
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=f"{role}s")])  # authors, reviewers, ...
            credentials.append((username, role, password))
        return credentials

    def _save_credentials(self, credentials):
        CREDENTIALS_FILE.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{u}\t{p}\t{r}" for u, r, p in credentials]
        CREDENTIALS_FILE.write_text("username\tpassword\trole\n" + "\n".join(lines) + "\n")
        CREDENTIALS_FILE.chmod(0o600)


def load_demo_templates() -> dict[str, int]:
    """Register the demo versions and walk them to their stages; safe to run again."""
    from registry_ui.prompt_model import ModelStage, PromptModel, get_registry
    from registry_ui.web.mirror import mirror_template, sync_registry
    from registry_ui.web.models import AuditEvent

    models = [
        PromptModel(name, template, version, metadata=metadata)
        for name, versions in DEMO_TEMPLATES.items()
        for version, template, metadata, _ in versions
    ]
    PromptModel.register_many(models, actor="demo-loader", reason="demo data")
    stages_by_key = {
        (name, version): path
        for name, versions in DEMO_TEMPLATES.items()
        for version, _, _, path in versions
    }
    for model in models:
        for target in stages_by_key[(model.name, model.version)]:
            # A run that stopped half way resumes: only moves still ahead are made.
            if target == "staging" and model.stage == ModelStage.DEV:
                model.promote_to_staging()
            elif target == "production" and model.stage == ModelStage.STAGING:
                model.promote_to_production()
            else:
                continue
            # The dashboard reads the mirror; it sees each move, as the sync would, so it
            # knows which versions once held production (a rollback may bring them back).
            mirror_template(
                model.name,
                get_registry().gateway.list_versions(model.name),
                source=AuditEvent.Source.EXTERNAL,
                actor="demo-loader",
            )
    sync_registry()  # versions that never moved
    return {"templates": len(DEMO_TEMPLATES), "versions": len(models)}
