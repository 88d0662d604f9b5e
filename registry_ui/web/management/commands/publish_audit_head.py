from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_ui.web.audit import heads


class Command(BaseCommand):
    help = (
        "Append the audit chain's head to AUDIT_HEAD_FILE, after checking the events since the "
        "last published head (what Celery beat runs every AUDIT_HEAD_EXPORT_SECONDS)."
    )

    def handle(self, *args, **options):
        path = settings.AUDIT_HEAD_FILE
        if not path:
            raise CommandError("AUDIT_HEAD_FILE is not set: there is nowhere to publish the head")
        try:
            head = heads.publish_head(path)
        except heads.HeadFileError as error:
            raise CommandError(str(error)) from None
        except heads.ChainBrokenError as error:
            raise CommandError(f"head NOT published, the audit trail is BROKEN: {error}") from None
        if head is None:
            last = heads.last_head(path)
            if last is None:
                raise CommandError("nothing published: the audit trail is empty")
            self.stdout.write(f"nothing new: the head is still seq {last.seq}, hash {last.hash}")
            return
        self.stdout.write(f"published: seq {head.seq}, hash {head.hash} to {path}")
