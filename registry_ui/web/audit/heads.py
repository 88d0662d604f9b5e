"""The audit chain's head, published outside the database so removals show.

A keyed chain stops anyone without the key from rewriting events, but not from deleting the
newest ones or emptying the table: what is left still checks out. So the head (the newest
event's seq and hash) is appended every few minutes (Celery beat) to AUDIT_HEAD_FILE, one
JSON line each, and logged. verify_audit_log then requires every published head to be in
the chain as published: a deleted tail, a truncated table or a rewritten chain no longer
contains them.

The file must be somewhere the database's owner cannot rewrite: in deployment a volume
mounted only into the app's containers, append-only (chattr +a) and collected off the host
with the logs (docs/security.md, "Audit trail integrity"). A head is appended only after the
events since the last published one check out, so the file never vouches for a chain that
had been tampered with.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from django.utils import timezone

from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent

logger = logging.getLogger("registry_ui.audit")

# The last line is found by reading this much from the end of the file.
_TAIL_BYTES = 4096


class HeadFileError(ValueError):
    """AUDIT_HEAD_FILE holds a line that is not a published head."""


class ChainBrokenError(Exception):
    """The events since the last published head do not check out: nothing was published."""


def read_heads(path: str | os.PathLike) -> list[trail.Head]:
    """Every head published to ``path``, oldest first; none if the file does not exist yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [
        _parse(line, path, number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def last_head(path: str | os.PathLike) -> trail.Head | None:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _TAIL_BYTES))
            lines = file.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return None
    lines = [line for line in lines if line.strip()]
    return _parse(lines[-1], path, None) if lines else None


def _parse(line: str, path, number: int | None) -> trail.Head:
    where = f"{path} line {number}" if number else f"the last line of {path}"
    try:
        data = json.loads(line)
        head = trail.Head(seq=int(data["seq"]), hash=str(data["hash"]))
    except (ValueError, KeyError, TypeError):
        raise HeadFileError(
            f"{where} is not a published head: each line is a JSON object with "
            '"at", "seq" and "hash", e.g. {"at": "2026-12-01T10:00:00+00:00", "seq": 42, '
            '"hash": "..."}'
        ) from None
    return trail.Head(seq=head.seq, hash=head.hash, published=f"at {data.get('at', '?')} in {path}")


def publish_head(path: str | os.PathLike) -> trail.Head | None:
    """Append the chain's head to ``path`` (and log it) once the events since the last
    published head check out; None when there is nothing new.

    Raises ChainBrokenError (logged as an error too) when they do not check out.
    """
    newest = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    if newest is None:
        return None
    previous = last_head(path)
    if previous and (previous.seq, previous.hash) == (newest["seq"], newest["hash"]):
        return None
    check = trail.verify_chain(since=previous)  # the whole chain the first time only
    if not check.ok:
        logger.error("audit head NOT published, the chain does not check out: %s", check.problem)
        raise ChainBrokenError(check.problem)
    line = {"at": timezone.now().isoformat(), "seq": check.head_seq, "hash": check.head_hash}
    # One write() of one short line with O_APPEND: concurrent publishers never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    # Logs usually leave the host too: a second copy the database's owner cannot reach.
    logger.info("audit head published: seq %s hash %s", check.head_seq, check.head_hash)
    return trail.Head(seq=check.head_seq, hash=check.head_hash, published=f"in {path}")
