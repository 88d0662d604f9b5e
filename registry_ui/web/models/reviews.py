"""Promotion requests, rollbacks and releases, their approvals and comments."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, StrIndex
from django.db.models.lookups import Exact

from registry_ui.web import permissions
from registry_ui.web.models.prompts import Stage, Template, TemplateVersion


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
    # The version's test cases when filed (checks.services.snapshot): status, failing.
    checks = models.JSONField(default=dict, blank=True)
    outcome = models.TextField(blank=True)  # what happened, for done/failed/stale/rejected
    report = models.JSONField(default=dict, blank=True)  # a release's per-template report
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Every page's "waiting for me" count and the inbox read the open requests, not
            # the whole history of requests.
            models.Index(fields=["status", "created_at"], name="request_status_created"),
        ]
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
            # A CI account: registers only on behalf of a person, who counts as an author.
            ("register_on_behalf", "Registers versions on behalf of a person (CI accounts)"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.RELEASE:
            return f"release #{self.pk}"
        return f"#{self.pk} {self.template.name} {self.version.version} -> {self.target_stage}"

    @property
    def label(self) -> str:
        return str(self)

    def valid_approvals(self) -> int:
        """Approvals by reviewers who still hold the role (an approval of a stale request
        never counts: the request is closed)."""
        return sum(
            1
            for approval in self.approvals.select_related("reviewer")
            if approval.reviewer.is_active and permissions.may_review(approval.reviewer)
        )


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
