"""The sweeper: sends operations that are due, takes back ones whose lease ran out."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from registry_ui.web.models import Operation

# A release holds each template it moves through an operation row of the item's own (its
# "slot", see reviews.execution): the release's operation owns it, leases and retries it.
_release_slot = Q(request__release__isnull=False)


def sweep(*, send: Callable[[Sequence[uuid.UUID]], None], now=None) -> dict[str, int]:
    """Take back running operations whose lease ran out, and send pending ones that are due.

    A running operation's worker renews its lease every few seconds; one whose lease ran
    out belongs to a worker that died, hung or lost its database connection, and is due
    again at once (its attempt was counted when it was claimed). A pending operation is
    due when its backoff is over, or, never tried, when it has waited the send grace (its
    message was probably lost). ``send`` queues them now.
    """
    now = now or timezone.now()
    taken_back = (
        Operation.objects.filter(
            Q(lease_expires_at__lt=now)
            # Rows claimed before leases existed: the time limit stands in for the lease.
            | Q(
                lease_expires_at__isnull=True,
                started_at__lt=now - timedelta(seconds=settings.OPERATION_TIME_LIMIT_SECONDS),
            ),
            status=Operation.Status.RUNNING,
        )
        .exclude(_release_slot)
        .update(
            status=Operation.Status.PENDING,
            lease_expires_at=None,
            next_attempt_at=now,
            last_error="taken back by the sweeper: its worker stopped renewing its lease",
        )
    )
    never_tried_before = now - timedelta(seconds=settings.OPERATION_SEND_GRACE_SECONDS)
    due = list(
        Operation.objects.filter(
            Q(next_attempt_at__lte=now)
            | Q(next_attempt_at__isnull=True, created_at__lt=never_tried_before),
            status=Operation.Status.PENDING,
        )
        .exclude(_release_slot)
        .order_by("created_at")
        .values_list("id", flat=True)[:1000]
    )
    send(due)
    return {"reset": taken_back, "sent": len(due)}
