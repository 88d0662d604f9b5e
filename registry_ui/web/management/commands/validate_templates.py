"""Check template files (docs/template-files.md) without registering anything; for CI."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_ui import config
from registry_ui.core.template_files import scan_templates


class Command(BaseCommand):
    help = (
        "Check prompt template files (*.yaml, *.yml) and print every problem as "
        "file:line:col: message, metadata the policy (REGISTRY_UI_REQUIRED_METADATA) requires "
        "and test cases included. Exits with status 1 if there is any problem. Registers nothing."
    )
    # Reads files only: no database, no MLflow, no reason to check the project's settings.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "path", help="a template file, or a directory searched recursively for them"
        )

    def handle(self, *args, path: str, **options):
        root = shown_path(path)
        if not root.exists():
            raise CommandError(f"{path}: no such file or directory")
        scan = scan_templates(root, policy=metadata_policy(), limits=settings.INPUT_LIMITS)
        if not scan.files:
            raise CommandError(f"{path}: no template files (*.yaml, *.yml) found")
        for problem in sorted([*scan.problems, *scan.warnings], key=_in_files(scan.files)):
            self.stdout.write(str(problem))
        summary = (
            f"checked {_count(scan.entries, 'template version')} in "
            f"{_count(len(scan.files), 'file')}: "
        )
        if scan.problems:
            # The problems first, then the reason for the exit status, whatever the buffering.
            self.stdout.flush()
            raise CommandError(summary + _count(len(scan.problems), "problem"))
        self.stdout.write(summary + "all valid")


def metadata_policy():
    """The policy registration applies, so that a file that validates also registers."""
    try:
        return config.required_metadata()
    except config.ConfigurationError as error:
        raise CommandError(str(error)) from None


def shown_path(path: str) -> Path:
    """The path relative to the current directory when it is under it, else as given."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return Path(path)


def _in_files(files):
    """Problems and warnings in the order of the files, then of lines and columns."""
    order = {str(path): index for index, path in enumerate(files)}
    return lambda p: (order.get(p.path, len(order)), p.line, p.column)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
