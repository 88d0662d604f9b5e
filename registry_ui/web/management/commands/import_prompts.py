"""Take MLflow's native prompts under governance (see docs/mlflow-prompts.md, "Adoption")."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from registry_ui.core.errors import RegistryError
from registry_ui.web.prompts.native import adopt_prompts


class Command(BaseCommand):
    help = (
        "Adopt native prompts of MLflow's Prompt Registry: derive semantic versions from their "
        "variable diffs (kept as the version tag registry_ui.semver), mirror every version with "
        "who and when MLflow recorded, and keep their current aliases as the starting state "
        "(audited as adopted). A second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--prefix", default="", help="only prompts whose name starts so")
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be done, change nothing"
        )
        parser.add_argument("--actor", default=None, help="who adopts (default: $USER)")

    def handle(self, *args, prefix: str = "", dry_run: bool = False, actor=None, **options):
        try:
            lines = adopt_prompts(prefix=prefix, dry_run=dry_run, actor=actor or getpass.getuser())
        except RegistryError as error:
            raise CommandError(str(error)) from error
        for line in lines:
            self.stdout.write(line)
        if not lines:
            self.stdout.write(
                "nothing to do: every native prompt"
                + (f" starting with {prefix!r}" if prefix else "")
                + " is adopted and up to date"
            )
        elif dry_run:
            self.stdout.write("dry run: nothing was changed")
