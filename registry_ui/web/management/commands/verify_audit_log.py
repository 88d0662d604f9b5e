from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_ui.web.audit import heads, trail
from registry_ui.web.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Walk the audit trail's keyed hash chain and compare it with the heads published "
        "outside the database; report the first problem and exit 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=2000, help="events read per database round trip"
        )
        parser.add_argument(
            "--expect-head",
            metavar="HASH",
            action="append",
            default=[],
            help="a head hash printed by an earlier run (or kept anywhere outside the "
            "database): it must still be in the chain, unchanged. May be given more than once.",
        )
        parser.add_argument(
            "--heads-file",
            metavar="PATH",
            default=None,
            help="the published heads to compare with (default: AUDIT_HEAD_FILE; '' for none)",
        )

    def handle(self, *args, chunk_size, expect_head, heads_file, **options):
        path = settings.AUDIT_HEAD_FILE if heads_file is None else heads_file
        try:
            published = heads.read_heads(path) if path else []
        except heads.HeadFileError as error:
            raise CommandError(f"audit trail NOT checked: {error}") from None
        expected = [self._expected(given) for given in expect_head]
        check = trail.verify_chain(chunk_size=chunk_size, heads=[*published, *expected])
        if not check.ok:
            raise CommandError(
                f"audit trail BROKEN: {check.problem}; {check.checked} events before it check out"
            )
        if check.checked == 0:
            self.stdout.write("audit trail OK: 0 events checked (the trail is empty)")
            return
        self.stdout.write(
            f"audit trail OK: {check.checked} events checked (seq 1 to {check.head_seq}), "
            f"head hash {check.head_hash}"
        )
        self.stdout.write(self._details(check, path, published, expected))

    def _expected(self, given: str) -> trail.Head:
        given = given.strip().lower()
        seq = AuditEvent.objects.filter(hash=given).values_list("seq", flat=True).first()
        if seq is None:
            raise CommandError(
                f"audit trail BROKEN: the expected head {given} is not in the chain "
                "(the events up to it were deleted or rewritten, or this is another database)"
            )
        return trail.Head(seq=seq, hash=given, published="given with --expect-head")

    def _details(self, check, path, published, expected) -> str:
        lines = []
        if check.unkeyed:
            lines.append(
                f"  seq 1 to {check.unkeyed}: written before the chain had a key (plain SHA-256)"
            )
        if check.key_ids:
            lines.append(f"  keyed with key id {', '.join(check.key_ids)}")
        if path:
            lines.append(f"  {len(published)} published heads in {path} found unchanged")
        else:
            lines.append("  no published heads compared (AUDIT_HEAD_FILE is not set)")
        if expected:
            lines.append(f"  {len(expected)} expected head(s) found unchanged")
        return "\n".join(lines)
