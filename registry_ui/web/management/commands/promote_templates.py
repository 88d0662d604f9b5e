"""File promotion requests for templates; reviewers approve them (review is never bypassed)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registry_ui.web.management.requests import file_one, requesting_user
from registry_ui.web.models import Stage, TemplateVersion

# The stage a version must be in to be promoted to each target.
_SOURCE = {"staging": Stage.DEV, "production": Stage.STAGING}


class Command(BaseCommand):
    help = (
        "File promotion requests: --to production requests the staging version of each named "
        "template; --to staging requests the newest dev version. Reviewers approve them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", help="templates (default: every one with a candidate)"
        )
        parser.add_argument("--to", required=True, choices=sorted(_SOURCE), dest="target")
        parser.add_argument("--user", help="the account filing the requests (authors group)")
        parser.add_argument("--reason", default="", help="the justification reviewers read")

    def handle(self, *args, names, target, user, reason, **options):
        account = requesting_user(user)
        justification = reason.strip() or f"promote_templates --to {target}"
        candidates = self._candidates(target)
        missing = [name for name in names if name not in candidates]
        chosen = names or sorted(candidates)
        counts = {"filed": 0, "open": 0, "refused": 0}
        for name in missing:
            self.stdout.write(f"{name}: no {_SOURCE[target]} version to promote")
        for name in chosen:
            if name in missing:
                continue
            outcome, line = file_one(account, name, candidates[name], target, justification)
            counts[outcome] += 1
            self.stdout.write(line)
        summary = (
            f"{counts['filed']} request(s) filed, {counts['open']} already open, "
            f"{counts['refused']} refused, {len(missing)} without a candidate"
        )
        if not chosen:
            self.stdout.write(f"nothing to promote: no template has a {_SOURCE[target]} version")
            return
        if counts["refused"] or missing:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))

    def _candidates(self, target: str) -> dict[str, str]:
        """Template name -> the version to request (the newest in the source stage)."""
        found: dict[str, str] = {}
        rows = (
            TemplateVersion.objects.filter(stage=_SOURCE[target])
            .order_by("template__name", "major", "minor", "patch")
            .values_list("template__name", "version")
        )
        for name, version in rows:
            found[name] = version  # ordered: the newest wins
        return found
