"""What the experiments domain announces to the others."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that defines or stops an experiment, after its audit event,
# with experiment=, change= ("defined" or "stopped"), actor= and source=. The reviews
# domain evaluates the metric gate of the open production requests it affects again.
experiment_changed = Signal()
