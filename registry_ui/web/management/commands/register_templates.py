"""Register the template versions in files under PATH as one batch (see docs/template-files.md)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_ui.core.errors import RegistryError
from registry_ui.core.policy import PolicyError
from registry_ui.core.template_files import scan_templates
from registry_ui.registry import NewVersion
from registry_ui.web.management.commands.validate_templates import metadata_policy
from registry_ui.web.management.requests import file_one, registering_user, requesting_user
from registry_ui.web.models import AuditEvent, Batch, Operation
from registry_ui.web.operations import queue


class Command(BaseCommand):
    help = (
        "Register new template versions from YAML files as one batch; identical re-runs do nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="a template file or a directory of them")
        parser.add_argument(
            "--user",
            help="the account that registers (an author of every version it writes); "
            "with --stage it files the requests too",
        )
        parser.add_argument(
            "--on-behalf-of",
            default="",
            help="a CI account's run: the username of the person who asked (an author too)",
        )
        parser.add_argument("--reason", default="", help="why, for the audit trail")
        parser.add_argument(
            "--timeout", type=float, default=600, help="seconds to wait for the workers"
        )
        parser.add_argument("--no-wait", action="store_true", help="file the batch and return")
        parser.add_argument(
            "--stage",
            choices=["staging", "production"],
            help="then file promotion requests for these versions (reviewers approve them)",
        )

    def handle(self, *args, path, reason, timeout, no_wait, stage, user, on_behalf_of, **options):
        if stage and no_wait:
            raise CommandError("--stage needs the versions registered: drop --no-wait")
        try:
            scan = scan_templates(
                Path(path), policy=metadata_policy(), limits=settings.INPUT_LIMITS
            )
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file or directory") from None
        for problem in [*scan.problems, *scan.warnings]:
            self.stdout.write(str(problem))
        if scan.problems:
            raise CommandError(f"{len(scan.problems)} problem(s): nothing was registered")
        # Who registers, and who files: refused before anything is registered.
        registrant = registering_user(user)
        account = requesting_user(user) if stage else None
        # A file's tests are registered in the version's metadata, under test_cases.
        versions = [
            NewVersion(
                spec.name, spec.version, spec.template, spec.version_metadata, extra=spec.extra
            )
            for spec in scan.specs
        ]
        try:
            batch = queue.batch_register(
                versions=versions,
                actor=registrant.get_username(),
                user=registrant,
                on_behalf_of=on_behalf_of,
                reason=reason or f"register_templates {path}",
                source=AuditEvent.Source.COMMAND,
            )
        except (RegistryError, PolicyError, ValueError) as error:
            raise CommandError(str(error)) from error
        if batch is None:
            self.stdout.write(
                f"nothing to register: all {len(versions)} version(s) are in the registry already"
            )
        else:
            self.stdout.write(f"batch {batch.pk}: {batch.total} version(s) to register")
            if no_wait:
                return
            self._wait(batch, timeout)
        if stage:
            self._request(account, versions, stage, reason or f"register_templates {path}")

    def _request(self, account, versions, stage: str, justification: str) -> None:
        counts = {"filed": 0, "open": 0, "refused": 0}
        for new in versions:
            outcome, line = file_one(account, new.name, new.version, stage, justification)
            counts[outcome] += 1
            self.stdout.write(line)
        summary = (
            f"{counts['filed']} promotion request(s) to {stage} filed, "
            f"{counts['open']} already open, {counts['refused']} refused"
        )
        if counts["refused"]:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))

    def _wait(self, batch: Batch, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            batch.refresh_from_db()
            if batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED):
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"batch {batch.pk} still running after {timeout:.0f}s "
                    f"({batch.succeeded} done, {batch.failed} failed); "
                    "see `manage.py operations list`"
                )
            time.sleep(0.5)
        for op in batch.operations.filter(status=Operation.Status.FAILED):
            self.stdout.write(f"failed: {op.template_name} {op.version}: {op.last_error}")
        summary = f"batch {batch.pk}: {batch.succeeded} registered, {batch.failed} failed"
        if batch.status == Batch.Status.FAILED:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
