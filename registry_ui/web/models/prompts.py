"""The mirror of the registry: templates, their versions and saved preview samples."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone


class Stage(models.TextChoices):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class TemplateQuerySet(models.QuerySet):
    def note_changes(self) -> int:
        """Set these templates' changed_at from their versions: the newest registration
        time, or the template's creation while no version has one. The mirror calls it
        wherever it adds versions."""
        newest = Subquery(
            TemplateVersion.objects.filter(template=OuterRef("pk"), created_at__isnull=False)
            .order_by("-created_at")
            .values("created_at")[:1]
        )
        return self.update(changed_at=Coalesce(newest, F("created_at")))


class Template(models.Model):
    name = models.CharField(max_length=200, unique=True)
    registered_model_name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # Set when production changed outside the dashboard; a reviewer clears it.
    external_production_change = models.BooleanField(default=False)
    # Counts stage moves of any version: a request filed at an older epoch is stale.
    stage_epoch = models.PositiveIntegerField(default=0)
    # The registered model's last_updated_timestamp (MLflow's milliseconds) when the sync
    # last read all of it: the incremental sync reads the template again once it moves.
    mlflow_updated_ms = models.BigIntegerField(null=True, blank=True, db_index=True)
    # When its newest version was registered (the row's creation while it has none with a
    # time): the list's "last change" order, kept by the mirror (note_changes) so that
    # sorting reads one index instead of every template's versions.
    changed_at = models.DateTimeField(default=timezone.now)

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["-changed_at", "name"], name="template_changed")]
        permissions = [
            ("view_metrics", "Can view and compare version metrics"),
            ("define_experiment", "Can define A/B experiments"),
        ]

    def __str__(self) -> str:
        return self.name


class TemplateFlag(models.Model):
    """Something about a template a reviewer must look at, raised by a worker or the sync.

    One open flag per template, kind and version (raising it again changes nothing); a
    reviewer resolves it after checking MLflow.
    """

    class Kind(models.TextChoices):
        OUTSIDE_CHANGE = "outside_change", "changed outside registry_ui"
        WRITE_REFUSED = "write_refused", "a stage move was refused"
        DUPLICATE_VERSION = "duplicate_version", "a version is registered twice in MLflow"
        CONTENT_MISMATCH = "content_mismatch", "text no longer matches its content hash"
        BREAK_GLASS = "break_glass", "moved without review (break glass)"

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="flags")
    version = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "kind", "version"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_flag_per_template_kind_version",
            )
        ]

    def __str__(self) -> str:
        where = f" {self.version}" if self.version else ""
        return f"{self.template.name}{where}: {self.get_kind_display()}"


class MlflowProblem(models.Model):
    """An MLflow entry the sync cannot mirror (quarantined), with the reason; every other
    template is mirrored meanwhile. Resolved when a later sync reads it again (or it is gone).
    """

    registered_model_name = models.CharField(max_length=500)
    mlflow_version = models.CharField(max_length=20, blank=True)  # blank: the whole template
    template_name = models.CharField(max_length=500, blank=True)
    problem = models.TextField()
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["registered_model_name", "mlflow_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model_name", "mlflow_version"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_problem_per_entry",
            )
        ]

    def __str__(self) -> str:
        return f"{self.registered_model_name} {self.mlflow_version}: {self.problem[:60]}"


# Semantic versions in SQL: major, minor and patch are numbers, so 1.10.0 sorts after 1.9.0.
OLDEST_FIRST = ("major", "minor", "patch")
NEWEST_FIRST = ("-major", "-minor", "-patch")


class TemplateVersionQuerySet(models.QuerySet):
    def newest_first(self) -> TemplateVersionQuerySet:
        return self.order_by(*NEWEST_FIRST)

    def before(self, version: TemplateVersion) -> TemplateVersionQuerySet:
        """The versions of ``version``'s template that come before it, newest first:
        ``.before(v).first()`` is "the version before" v."""
        earlier = (
            Q(major__lt=version.major)
            | Q(major=version.major, minor__lt=version.minor)
            | Q(major=version.major, minor=version.minor, patch__lt=version.patch)
        )
        return self.filter(earlier, template_id=version.template_id).newest_first()


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
    # A chat template's messages, its model configuration and response format, as
    # core/messages.normalize_extra gives them ({} for a text template): its test cases
    # check them, its pages show them.
    extra = models.JSONField(default=dict, blank=True)
    # Its authors, who may not approve it (registry_ui.web.prompts.authorship): the metadata's
    # author as the account it resolved to, else as written (author_unresolved: from outside
    # MLflow, naming no account); the account that registered it; and, when that was a CI
    # account, the person who asked for it.
    author = models.CharField(max_length=150, blank=True)
    author_unresolved = models.BooleanField(default=False)
    registered_by = models.CharField(max_length=150, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    content_sha256 = models.CharField(max_length=64)
    mlflow_version = models.CharField(max_length=20)
    run_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    # Held production at some point: a rollback may bring it back.
    was_production = models.BooleanField(default=False)
    # Seen by the sync: deleted from MLflow (the row stays, for the audit trail and the
    # lineage), or its text in MLflow no longer matches the hash it was registered with
    # (the row keeps the registered text; requests on it cannot be approved).
    missing_since = models.DateTimeField(null=True, blank=True)
    tampered_at = models.DateTimeField(null=True, blank=True)

    objects = TemplateVersionQuerySet.as_manager()

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

    def compared_with(self, stage: str | None = None) -> TemplateVersion | None:
        """What this version is compared with: the version holding ``stage`` (what a
        promotion to it would replace), else the version before it."""
        if stage:
            holder = (
                TemplateVersion.objects.filter(template_id=self.template_id, stage=stage)
                .exclude(pk=self.pk)
                .first()
            )
            if holder is not None:
                return holder
        return TemplateVersion.objects.before(self).first()


class VersionSample(models.Model):
    """Example values for a version's variables, saved from the render preview so every
    reviewer of the version sees the same example (registry_ui.web.prompts.samples)."""

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
