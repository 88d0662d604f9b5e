"""Django's mirror of the registry, the operations that change it, and the audit trail.

MLflow stays the source of truth for templates and stages; these rows let pages answer
without calling MLflow, and record every change so it is retried and never applied twice.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, StrIndex
from django.db.models.lookups import Exact


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
    # Counts stage moves of any version: a request filed at an older epoch is stale.
    stage_epoch = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("view_metrics", "Can view and compare version metrics"),
            ("define_experiment", "Can define A/B experiments"),
        ]

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
    # Held production at some point: a rollback may bring it back.
    was_production = models.BooleanField(default=False)

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


class AppendOnlyError(Exception):
    """An attempt to change or delete audit events: they are only ever appended."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be updated: the audit trail is append-only")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted: the audit trail is append-only")


class AuditEvent(models.Model):
    """Append-only and hash-chained: written only by registry_ui.web.audit.record_many().

    Each event stores the hash of the one before it (in ``seq`` order), so an edited,
    inserted or removed row breaks the chain; ``manage.py verify_audit_log`` finds it. On
    PostgreSQL a trigger (migration 0002) also refuses UPDATE and DELETE.
    """

    class Source(models.TextChoices):
        DASHBOARD = "dashboard"
        WORKER = "worker"
        EXTERNAL = "external"
        COMMAND = "command"

    seq = models.PositiveBigIntegerField(unique=True)  # the chain order: 1, 2, 3, ...
    at = models.DateTimeField(db_index=True)  # set by record_many() before hashing
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=250)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        permissions = [("export_auditevent", "Can export the audit trail")]
        indexes = [
            # audit.production_history(): a template's version events, found by the
            # "name@" prefix of object_id (LIKE 'name@%' needs the pattern opclass).
            models.Index(
                fields=["object_id"],
                name="audit_version_events",
                condition=Q(object_type="template_version"),
                opclasses=["varchar_pattern_ops"],
            ),
            # audit.production_history(): the few executed requests among all events.
            models.Index(
                fields=["seq"],
                name="audit_executed_requests",
                condition=Q(action="request.executed"),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed: the audit trail is append-only")
        if not self.hash:
            raise AppendOnlyError(
                "audit events are written by registry_ui.web.audit.record() or record_many(), "
                "which chain them"
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted: the audit trail is append-only")


class PromotionRequest(models.Model):
    """A request to move one exact version (bound to its content hash) to a stage.

    A release is a request of kind "release" whose items are requests with ``release`` set;
    it is approved once, as a whole. A rollback is a request of kind "rollback".
    """

    class Kind(models.TextChoices):
        PROMOTE = "promote"
        ROLLBACK = "rollback"
        RELEASE = "release"

    class Status(models.TextChoices):
        OPEN = "open"  # waiting for approvals
        EXECUTING = "executing"  # approved: a worker carries it out
        DONE = "done"
        FAILED = "failed"
        REJECTED = "rejected"
        STALE = "stale"  # the template changed under it; approvals stopped counting
        WITHDRAWN = "withdrawn"

    ACTIVE = (Status.OPEN, Status.EXECUTING)

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PROMOTE)
    release = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="items"
    )
    template = models.ForeignKey(
        Template, null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )
    version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )
    content_sha256 = models.CharField(max_length=64, blank=True)
    from_stage = models.CharField(max_length=12, choices=Stage.choices, blank=True)
    target_stage = models.CharField(max_length=12, choices=Stage.choices, blank=True)
    basis_epoch = models.PositiveIntegerField(default=0)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    # Who may not approve: ",alice,bob," (the version's author and registrant; for a
    # release, those of every item). Approval rows copy it so a CHECK can refuse them.
    version_authors = models.CharField(max_length=1000, default=",")
    justification = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    required_approvals = models.PositiveSmallIntegerField()
    gate = models.JSONField(default=dict, blank=True)  # the metric gate when filed
    # The version's test cases when filed (registry_ui.web.checks.snapshot): status, failing.
    checks = models.JSONField(default=dict, blank=True)
    outcome = models.TextField(blank=True)  # what happened, for done/failed/stale/rejected
    report = models.JSONField(default=dict, blank=True)  # a release's per-template report
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "target_stage"],
                condition=Q(status__in=["open", "executing"]),
                name="one_open_request_per_version_and_target",
            ),
            models.CheckConstraint(
                condition=Q(kind="release") | Q(target_stage__in=["staging", "production"]),
                name="request_targets_staging_or_production",
            ),
            models.CheckConstraint(
                condition=Q(kind="release") | Q(version__isnull=False, template__isnull=False),
                name="request_names_a_version",
            ),
        ]
        permissions = [
            ("request_promotion", "Can request promotions and releases"),
            ("approve_promotion", "Can approve or reject promotion requests"),
            ("rollback_production", "Can roll production back"),
            ("comment_request", "Can comment on promotion requests"),
            ("register_version", "Can register template versions"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.RELEASE:
            return f"release #{self.pk}"
        return f"#{self.pk} {self.template.name} {self.version.version} -> {self.target_stage}"

    @property
    def label(self) -> str:
        return str(self)


class Approval(models.Model):
    """One reviewer's approval; the CHECK constraints are the four-eyes rule in the database."""

    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="approvals"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals"
    )
    reviewer_username = models.CharField(max_length=150)
    # Copies of the request's requester and authors (a trigger checks they match).
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    version_authors = models.CharField(max_length=1000)
    comment = models.TextField(blank=True)
    gate_override_reason = models.TextField(blank=True)
    # Why the reviewer approved although test cases fail (the worker's gate then lets it pass).
    checks_override_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "reviewer"], name="one_approval_per_reviewer"
            ),
            models.CheckConstraint(
                condition=~Q(reviewer=F("requester")), name="approval_not_by_requester"
            ),
            models.CheckConstraint(
                condition=Exact(
                    StrIndex(
                        F("version_authors"),
                        Concat(Value(","), F("reviewer_username"), Value(",")),
                    ),
                    0,
                ),
                name="approval_not_by_author",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_username} approved #{self.request_id}"


class RequestComment(models.Model):
    """The comment thread of a request (rejections and approvals with text appear here too)."""

    class Kind(models.TextChoices):
        COMMENT = "comment"
        APPROVAL = "approval"
        REJECTION = "rejection"
        SYSTEM = "system"

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    author_username = models.CharField(max_length=150)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COMMENT)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author_username} on #{self.request_id}"


# -- experiments ------------------------------------------------------------------------------


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

    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="experiments")
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
        ]

    def __str__(self) -> str:
        return self.key


class ExperimentVariant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=32)
    version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="+")
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
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.name}"


class ServiceToken(models.Model):
    """A calling service's bearer token for the outcome API; only its sha256 is kept."""

    name = models.CharField(max_length=100, unique=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)  # the first characters, to tell tokens apart
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class OutcomeEvent(models.Model):
    """One outcome reported by a service; ``event_id`` makes a re-sent batch count once.

    Written only by registry_ui.web.experiments.record_outcomes (raw SQL, to learn which
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
            models.UniqueConstraint(
                fields=["service", "event_id"], name="one_outcome_per_service_event_id"
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


# -- checks --


class CheckRun(models.Model):
    """One run of a version's test cases (registry_ui.core.checks): why, by whom, results.

    ``results`` holds each case's CaseResult.to_data(): name, passed, the rendered text and
    the expectations it missed. The text and the cases are the version's, so a run stays
    true for the version's content.
    """

    class Trigger(models.TextChoices):
        REGISTRATION = "registration", "On registration"
        ON_DEMAND = "on_demand", "On demand"
        PROMOTION = "promotion", "Before promotion"

    version = models.ForeignKey(
        TemplateVersion, on_delete=models.CASCADE, related_name="check_runs"
    )
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    results = models.JSONField(default=list)
    passed = models.BooleanField()
    actor = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # checks.latest_run(): a version's newest run, read by its page and by requests.
            models.Index(fields=["version", "-created_at", "-id"], name="check_run_latest"),
        ]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        return f"checks of {self.version} {outcome} ({self.trigger})"


# -- dashboard --


class VersionSample(models.Model):
    """Example values for a version's variables, saved from the render preview so every
    reviewer of the version sees the same example (registry_ui.web.dashboard_services)."""

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="samples")
    name = models.CharField(max_length=60)
    values = models.JSONField(default=dict)  # variable -> the text typed in the preview form
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    saved_by_username = models.CharField(max_length=150)
    saved_at = models.DateTimeField()

    class Meta:
        ordering = ["version", "-saved_at", "-id"]
        constraints = [
            # Saving a sample again under its name replaces it (audited with the old values).
            models.UniqueConstraint(fields=["version", "name"], name="one_sample_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.name}"
