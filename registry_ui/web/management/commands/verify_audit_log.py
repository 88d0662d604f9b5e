from django.core.management.base import BaseCommand, CommandError

from registry_ui.web.audit import trail


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; report the first broken link and exit 1 if any."

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=2000, help="events read per database round trip"
        )

    def handle(self, *args, chunk_size, **options):
        check = trail.verify_chain(chunk_size=chunk_size)
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
