"""Django's mirror of the registry, the operations that change it, and the audit trail.

MLflow stays the source of truth for templates and stages; these rows let pages answer
without calling MLflow, and record every change so it is retried and never applied twice.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Stage(models.TextChoices):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Template(models.Model):
    name = models.CharField(max_length=200, unique=True)
    registered_model_name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # Set when production changed outside the dashboard; a reviewer clears it.
    external_production_change = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=40)
    # The semantic version split into numbers so that 1.10.0 sorts after 1.9.0 in SQL.
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.DEV)
    text = models.TextField()
    variables = models.JSONField(default=list)
    metadata = models.JSONField(default=dict)
    author = models.CharField(max_length=150, blank=True)
    registered_by = models.CharField(max_length=150, blank=True)
    content_sha256 = models.CharField(max_length=64)
    mlflow_version = models.CharField(max_length=20)
    run_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["template", "major", "minor", "patch"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="one_row_per_version"),
            # At most one version of a template holds staging, and one production.
            models.UniqueConstraint(
                fields=["template"],
                condition=Q(stage="staging"),
                name="one_staging_version_per_template",
            ),
            models.UniqueConstraint(
                fields=["template"],
                condition=Q(stage="production"),
                name="one_production_version_per_template",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} {self.version}"


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
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
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


class AuditEvent(models.Model):
    """Append-only: rows are only ever inserted (the approvals issue seals them)."""

    class Source(models.TextChoices):
        DASHBOARD = "dashboard"
        WORKER = "worker"
        EXTERNAL = "external"
        COMMAND = "command"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=250)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_id}"
