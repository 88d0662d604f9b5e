"""Stored results of a version's test cases."""

from __future__ import annotations

from django.db import models

from registry_ui.web.models.prompts import TemplateVersion


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


class CheckComparison(models.Model):
    """The test cases ``new`` breaks that ``old`` passed: both texts run the cases of both
    (checks.services.compare), once per pair and kept, since neither version's text nor its
    cases ever change and a page must not run them again on every view.

    ``regressions`` holds the CaseResult.to_data() of each case ``new`` breaks.
    """

    old = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="+")
    new = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="+")
    regressions = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Two pages computing one pair at once: the second keeps the first one's row.
            models.UniqueConstraint(fields=["old", "new"], name="check_comparison_once"),
        ]

    def __str__(self) -> str:
        return f"checks of {self.new} against {self.old}"
