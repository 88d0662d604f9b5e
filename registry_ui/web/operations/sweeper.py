"""The sweeper: sends operations left pending, gives back ones stuck running."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from registry_ui.web.models import Operation


def sweep(*, send: Callable[[Sequence[uuid.UUID]], None], now=None) -> dict[str, int]:
    """Send operations left pending, and give back ones stuck running past the time limit.

    ``send`` queues the pending ones now (the sweep_operations task passes its sender).
    """
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.OPERATION_TIME_LIMIT_SECONDS)
    reset = Operation.objects.filter(
        status=Operation.Status.RUNNING, started_at__lt=stuck_before
    ).update(status=Operation.Status.PENDING, last_error="reset by the sweeper: ran too long")
    pending_before = now - timedelta(seconds=settings.OPERATION_SEND_GRACE_SECONDS)
    pending = list(
        Operation.objects.filter(
            status=Operation.Status.PENDING, created_at__lt=pending_before
        ).values_list("id", flat=True)[:1000]
    )
    send(pending)
    return {"reset": reset, "sent": len(pending)}
