"""Idempotency-Key: a write sent again with the same key gets the first answer.

A client that loses the answer to a write (a timeout, a dropped connection, a CI job
restarted) sends it again with the same ``Idempotency-Key`` header and gets the first
answer instead of a second batch or a second request. The key is the token's: two tokens
never share answers. The same key with a different call (method, path or body) is refused
with 409. Answers are kept ``IDEMPOTENCY_HOURS`` (a setting, 24 by default); an hourly
worker task forgets older ones (:func:`forget`).

Two calls with the same key at the same time: the first inserts the key's row in its
transaction; the second's insert waits on the unique index until the first commits, then
reads and returns the first answer. A call that fails (a refusal, an error) rolls its row
back with everything else, so a retry runs it again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from ninja import Status

from registry_ui.web.api.problems import ApiProblem
from registry_ui.web.models import ApiToken, IdempotentCall

HEADER = "Idempotency-Key"
MAX_KEY = 200


def window() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_HOURS)


def fingerprint(request) -> str:
    """The call a key stands for: its method, path and body."""
    return _digest(request.method, request.path, request.body)


def fingerprint_of(method: str, path: str, body: dict) -> str:
    """The fingerprint of a JSON call as a client sends it (for tests and tools)."""
    return _digest(method, path, json.dumps(body).encode())


def _digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise ApiProblem(
            400,
            "bad-header",
            "Bad Idempotency-Key",
            f"{HEADER}: {len(key)} characters; 1 to {MAX_KEY} accepted",
            errors=[
                {
                    "field": HEADER,
                    "message": "wrong length",
                    "accepted": f"1 to {MAX_KEY} characters",
                }
            ],
        )


def _claim(token: ApiToken, key: str, print_: str) -> IdempotentCall | None:
    """This call's row for the key, or None when an earlier call holds it (its answer
    is then committed: a concurrent insert waits for the other transaction to end)."""
    for _ in range(2):
        try:
            with transaction.atomic():  # a savepoint: the clash leaves the transaction usable
                return IdempotentCall.objects.create(
                    token=token, key=key, fingerprint=print_, status=0, body={}
                )
        except IntegrityError:
            expired = IdempotentCall.objects.filter(
                token=token, key=key, created_at__lt=timezone.now() - window()
            ).delete()[0]
            if not expired:
                return None
    return None


def _replay(token: ApiToken, key: str, print_: str) -> Status:
    earlier = IdempotentCall.objects.get(token=token, key=key)
    if earlier.fingerprint != print_:
        raise ApiProblem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key used for another call",
            f"{HEADER} {key[:60]!r} was used for a different call (another path or body) in "
            f"the last {settings.IDEMPOTENCY_HOURS} hours: use a new key for a new call",
        )
    return Status(earlier.status, earlier.body)


def once(request, key: str | None, perform: Callable[[], tuple[int, dict]]) -> Status:
    """Run ``perform`` (returning status and JSON body) once per key and token.

    Without a key it simply runs. With one, a repeat of the same call gets the stored
    answer and ``perform`` does not run; ``perform``'s changes, its audit events and the
    stored answer commit together or not at all.
    """
    check_key(key)
    if not key:
        status, body = perform()
        return Status(status, body)
    token: ApiToken = request.auth
    print_ = fingerprint(request)
    with transaction.atomic():
        call = _claim(token, key, print_)
        if call is None:
            return _replay(token, key, print_)
        status, body = perform()
        body = _stored(body)
        call.status, call.body = status, body
        call.save(update_fields=["status", "body"])
    return Status(status, body)


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        # Full precision, as the API's own answers give it (Django's encoder keeps milliseconds).
        return o.isoformat() if isinstance(o, datetime) else super().default(o)


def _stored(body: dict) -> dict:
    """The answer as JSON holds it: the first caller gets exactly what a retry will."""
    return json.loads(json.dumps(body, cls=_Encoder))


def forget(now=None) -> int:
    """Delete the answers older than the window; returns how many."""
    cutoff = (now or timezone.now()) - window()
    return IdempotentCall.objects.filter(created_at__lt=cutoff).delete()[0]
