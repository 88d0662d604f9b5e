"""MLflow webhook deliveries already accepted, so a replayed one is refused.

The prompts domain's (registry_ui.web.prompts.webhooks). In the database rather than Django's
cache: the unique delivery id makes "first one wins" hold across every gunicorn worker and
host, and a row outlives a Redis restart or eviction; without REDIS_URL the cache is each
process's own memory, and a replay sent to another worker would pass.
"""

from __future__ import annotations

from django.db import models


class WebhookDelivery(models.Model):
    delivery_id = models.CharField(max_length=200, unique=True)  # X-MLflow-Delivery-Id
    # Rows older than the replay window are deleted as new deliveries arrive; the index
    # serves that delete.
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.received_at:%Y-%m-%d %H:%M:%S}"
