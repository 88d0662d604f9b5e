"""Development mail: every message appended to one readable file (EMAIL_FILE_PATH, by
default var/mail/outbox.txt), instead of MIME on the console where it buries the server's
own lines. Each message shows its recipients, its subject on one line and its text."""

from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

SEPARATOR = "=" * 79
_lock = threading.Lock()


def path() -> Path:
    return Path(settings.EMAIL_FILE_PATH)


def count() -> int:
    """How many messages the outbox holds."""
    try:
        with path().open(encoding="utf-8") as outbox:
            return sum(1 for line in outbox if line.rstrip("\n") == SEPARATOR)
    except FileNotFoundError:
        return 0


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        written = [message for message in email_messages if message.recipients()]
        if not written:
            return 0
        outbox = path()
        outbox.parent.mkdir(parents=True, exist_ok=True)
        with _lock, outbox.open("a", encoding="utf-8") as out:
            for message in written:
                out.write(
                    f"{SEPARATOR}\nTo: {', '.join(message.recipients())}\n"
                    f"From: {message.from_email}\nSubject: {' '.join(message.subject.split())}"
                    f"\n\n{message.body.rstrip()}\n\n"
                )
        return len(written)
