"""A/B experiments, the services that report outcomes, and the outcomes."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from registry_ui.web.models.native import NativePrompt, NativePromptVersion
from registry_ui.web.models.prompts import Template, TemplateVersion


class Experiment(models.Model):
    """An A/B experiment on one template: variants serving versions, split by weight.

    Runtime services read its configuration from MLflow (registry_ui.experiments), where
    the dashboard publishes it after every change (``published_at``).
    """

    class Kind(models.TextChoices):
        RATE = "rate"  # each outcome is 0 or 1 (e.g. engaged or not)
        MEAN = "mean"  # any number (e.g. seconds read)

    class Status(models.TextChoices):
        RUNNING = "running"  # between start and stop, unless stopped early
        STOPPED = "stopped"

    # On a template, or on a native prompt of MLflow's Prompt Registry: one of the two.
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="experiments", null=True, blank=True
    )
    native_prompt = models.ForeignKey(
        NativePrompt, on_delete=models.PROTECT, related_name="experiments", null=True, blank=True
    )
    key = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    metric = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RATE)
    min_samples = models.PositiveIntegerField()  # per variant
    target = models.FloatField(null=True, blank=True)
    start_at = models.DateTimeField()
    stop_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_by_username = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-start_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stop_at__gt=F("start_at")), name="experiment_stops_after_start"
            ),
            models.CheckConstraint(
                condition=Q(template__isnull=True) ^ Q(native_prompt__isnull=True),
                name="experiment_on_a_template_or_a_native_prompt",
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def subject_name(self) -> str:
        """The template's name, or the native prompt's."""
        return self.template.name if self.template_id else self.native_prompt.name

    @property
    def is_native(self) -> bool:
        return self.native_prompt_id is not None

    def state(self, now: datetime | None = None) -> str:
        """What the pages show: scheduled, running, ended (its window passed) or stopped."""
        now = now or timezone.now()
        if self.status == self.Status.STOPPED:
            return "stopped"
        if now < self.start_at:
            return "scheduled"
        if now >= self.stop_at:
            return "ended"
        return "running"


class ExperimentVariant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=32)
    # The template version it serves, or the native prompt version: one of the two.
    version = models.ForeignKey(
        TemplateVersion, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    native_version = models.ForeignKey(
        NativePromptVersion, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    weight = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField()  # 0: the control
    mlflow_run_id = models.CharField(max_length=64, blank=True)  # where its metrics are logged

    class Meta:
        ordering = ["experiment_id", "position"]  # ids: no join to order by
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="one_variant_per_name"),
            models.UniqueConstraint(
                fields=["experiment", "version"], name="one_variant_per_version"
            ),
            models.UniqueConstraint(
                fields=["experiment", "native_version"], name="one_variant_per_native_version"
            ),
            models.CheckConstraint(
                condition=Q(version__isnull=True) ^ Q(native_version__isnull=True),
                name="variant_serves_a_version_or_a_native_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.name}"

    @property
    def label(self) -> str:
        """The semantic version it serves (a template's, or one derived for a native
        prompt's version)."""
        return self.version.version if self.version_id else self.native_version.semver

    @property
    def stage(self) -> str:
        """The stage its version holds: a template version's, or the native alias
        (production, staging) on the native version, else dev."""
        if self.version_id:
            return self.version.stage
        aliases = self.native_version.prompt.aliases or {}
        number = str(self.native_version.number)
        for stage in ("production", "staging"):
            if str(aliases.get(stage, "")) == number:
                return stage
        return "dev"


class ServiceToken(models.Model):
    """A calling service's bearer token for the outcome API; only its sha256 is kept."""

    name = models.CharField(max_length=100, unique=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)  # the first characters, to tell tokens apart
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The experiments whose outcomes this service may report; none other (issue 16).
    experiments = models.ManyToManyField(Experiment, related_name="reporting_services", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class OutcomeEvent(models.Model):
    """One outcome reported by a service; ``event_id`` (unique per experiment) makes a
    re-sent batch count once.

    Written only by registry_ui.web.experiments.ingestion.record_outcomes (raw SQL, to learn which
    rows were new). Pages read OutcomeAggregate, never this table, so its only indexes are
    the ones inserts need: the foreign keys carry none (a million rows a day would pay for
    indexes no query uses), and no database constraint either: PostgreSQL checks deferred
    foreign keys row by row at commit, 3,000 lookups per batch of 1,000 (about a third of
    a batch's database time, measured by bench.ingest). record_outcomes looks the
    experiment and variant up in the same transaction, the service is the caller's token,
    and none of the three is ever deleted (PROTECT; the admin deletes nothing).
    """

    service = models.ForeignKey(
        ServiceToken, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    event_id = models.CharField(max_length=100)
    experiment = models.ForeignKey(
        Experiment, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    variant = models.ForeignKey(
        ExperimentVariant, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    unit_id = models.CharField(max_length=200)
    metric = models.CharField(max_length=64)
    value = models.FloatField()
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Per experiment, whichever service sends it: two services (or two tokens of
            # one) cannot count one outcome twice.
            models.UniqueConstraint(
                fields=["experiment", "event_id"], name="one_outcome_per_experiment_event_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.metric}={self.value}"


class OutcomeAggregate(models.Model):
    """count, sum and sum of squares of one variant's metric on one UTC day."""

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, db_index=False)
    variant = models.ForeignKey(ExperimentVariant, on_delete=models.PROTECT, db_index=False)
    metric = models.CharField(max_length=64)
    day = models.DateField()
    count = models.BigIntegerField(default=0)
    sum = models.FloatField(default=0.0)
    sumsq = models.FloatField(default=0.0)
    logged_count = models.BigIntegerField(default=0)  # the count last logged to MLflow

    class Meta:
        ordering = ["experiment_id", "variant_id", "metric", "day"]  # ids: no join
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "metric", "day"], name="one_aggregate_per_variant_metric_day"
            ),
        ]
        indexes = [
            # Results pages and the gate: an experiment's rows by metric and day.
            models.Index(fields=["experiment", "metric", "day"], name="aggregate_by_experiment"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id} {self.metric} {self.day}: n={self.count}"


class RunMetric(models.Model):
    """A metric logged to an MLflow run tagged with a template version (imported)."""

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="+")
    run_id = models.CharField(max_length=64)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    run_started_at = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ["version", "key", "run_id"]
        constraints = [
            models.UniqueConstraint(fields=["run_id", "key"], name="one_value_per_run_metric"),
        ]
        indexes = [models.Index(fields=["version", "key"], name="run_metric_by_version")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.key}={self.value}"
