from django.core.management.base import BaseCommand, CommandError

from registry_ui.core.errors import RegistryError
from registry_ui.web.prompts.mirror import sync_registry


class Command(BaseCommand):
    help = (
        "Mirror every template and version from MLflow; audit changes made outside. Exits 0 "
        "even when some entries cannot be read (they are listed on the MLflow problems "
        "page); non-zero only when MLflow cannot be reached."
    )

    def handle(self, *args, **options):
        try:
            summary = sync_registry()
        except RegistryError as error:
            raise CommandError(f"sync failed: {error}") from error
        self.stdout.write(
            "synced {templates} templates, {versions} versions: {changes} changes, "
            "{tampered} tampered, {deleted} deleted, {marks_repaired} stage marks repaired, "
            "{quarantined} entries left out (see MLflow problems) "
            "({mlflow_calls} MLflow calls)".format(**summary)
        )
