"""Changes to the registry as rows: batches of operations that workers carry out."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry_ui.web.models.prompts import Stage


class Batch(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor = models.CharField(max_length=150)
    # A CI account's batch: the person who asked for it (an author of its versions).
    on_behalf_of = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    run_id = models.CharField(max_length=64, blank=True)  # the MLflow run of its registrations
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.pk} by {self.actor} ({self.status})"


class Operation(models.Model):
    class Kind(models.TextChoices):
        REGISTER = "register"
        TRANSITION = "transition"
        ROLLBACK = "rollback"
        RELEASE = "release"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="operations")
    position = models.PositiveIntegerField(default=0)  # order within the batch
    kind = models.CharField(max_length=12, choices=Kind.choices)
    template_name = models.CharField(max_length=200)
    version = models.CharField(max_length=40)
    target_stage = models.CharField(max_length=12, choices=Stage.choices, blank=True)
    payload = models.JSONField(default=dict)  # template text and metadata for a registration
    # The approved request this operation carries out (one operation per request).
    request = models.OneToOneField(
        "PromotionRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="operation",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # Every claim is an attempt, counted here (not per Celery task), so the cap holds
    # whoever sends the operation; the count also fences a worker whose lease was taken.
    attempts = models.PositiveIntegerField(default=0)
    # A pending operation is not claimed before this (backoff after a transient failure).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A running operation belongs to its worker until this; the worker renews it while it
    # runs, and the sweeper gives back one whose lease ran out (its worker died or hung).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # A stage move's plan (core.intents.Intent), recorded before its first MLflow write so
    # a re-run finishes the same move instead of taking its own half for an outside change.
    intent = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch_id", "position"]
        constraints = [
            # Operations on one template run one at a time: MLflow's create-version and
            # stage moves race. A second claim on the same template fails here and waits.
            models.UniqueConstraint(
                fields=["template_name"],
                condition=Q(status="running"),
                name="one_running_operation_per_template",
            ),
        ]
        indexes = [
            # The sweeper's query: pending or running operations by age.
            models.Index(
                fields=["status", "created_at"],
                condition=Q(status__in=["pending", "running"]),
                name="operation_open_by_age",
            ),
        ]

    def __str__(self) -> str:
        target = f" -> {self.target_stage}" if self.target_stage else ""
        return f"{self.kind} {self.template_name} {self.version}{target}"
