"""The mirror of MLflow's native prompts (its Prompt Registry) and their governed aliases."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class NativePrompt(models.Model):
    """A prompt of MLflow's Prompt Registry, as the last sync (or import) read it.

    ``aliases`` is what MLflow has; ``governed_aliases`` what registry_ui accepts for the
    aliases it governs (set by import_prompts, moved only by an approved request). A
    difference between the two is an alias moved outside registry_ui.
    """

    name = models.CharField(max_length=500, unique=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict)
    aliases = models.JSONField(default=dict)  # alias -> MLflow version number (text)
    governed = models.BooleanField(default=False)
    governed_aliases = models.JSONField(default=dict)
    adopted_at = models.DateTimeField(null=True, blank=True)
    adopted_by = models.CharField(max_length=150, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # The prompt's registered model's last_updated_timestamp when last read in full: the
    # incremental pass reads the prompt again only once MLflow's moves (a new version).
    mlflow_updated_ms = models.BigIntegerField(null=True, blank=True)
    # Set when a governed alias moved outside registry_ui; cleared when it is back in step.
    outside_alias_change = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NativePromptVersion(models.Model):
    prompt = models.ForeignKey(NativePrompt, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()  # MLflow's version number
    semver = models.CharField(max_length=64)  # derived from the variable diffs (or its tag)
    kind = models.CharField(max_length=20)  # text, chat, text (Jinja2), chat (Jinja2)
    template = models.JSONField()  # the text, or the list of messages
    variables = models.JSONField(default=list)
    model_config = models.JSONField(null=True, blank=True)
    response_format = models.JSONField(null=True, blank=True)
    commit_message = models.TextField(blank=True)
    tags = models.JSONField(default=dict)
    created_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["prompt", "number"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "number"], name="one_row_per_native_version")
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name} {self.semver} (MLflow {self.number})"

    @property
    def is_chat(self) -> bool:
        return isinstance(self.template, list)


class NativeAliasRequest(models.Model):
    """A request to move a governed alias of a native prompt; moved after enough approvals."""

    class State(models.TextChoices):
        OPEN = "open"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    prompt = models.ForeignKey(NativePrompt, on_delete=models.CASCADE, related_name="requests")
    number = models.PositiveIntegerField()
    semver = models.CharField(max_length=64)
    alias = models.CharField(max_length=100)
    # The version holding the alias when the request was filed ("" : none); the move is
    # refused if MLflow no longer has it (compare-and-set).
    expected_holder = models.CharField(max_length=20, blank=True)
    requested_by = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    # A bump smaller than the variable diff needs, accepted by a reviewer with this reason.
    bump_override = models.TextField(blank=True)
    # Failing test cases accepted with this reason (else a failing version is refused).
    checks_override = models.TextField(blank=True)
    approvals = models.JSONField(default=list)  # reviewers' usernames
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    result = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "alias"],
                condition=Q(state="open"),
                name="one_open_request_per_native_alias",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name}: {self.alias} -> {self.semver} ({self.state})"


class NativeCheckRun(models.Model):
    """One run of a native prompt version's test cases (registry_ui.core.checks, rendered with
    MLflow's own formatting): why, by whom, the results. The cases are the version's tag
    ``registry_ui.test_cases`` (else the prompt's); ``cases_sha256`` is the hash of the cases
    run, so a change of them in MLflow is run again by the mirror.
    """

    class Trigger(models.TextChoices):
        MIRROR = "mirror", "When seen in MLflow"
        ON_DEMAND = "on_demand", "On demand"
        PROMOTION = "promotion", "Before an alias move"

    version = models.ForeignKey(
        NativePromptVersion, on_delete=models.CASCADE, related_name="check_runs"
    )
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    results = models.JSONField(default=list)
    passed = models.BooleanField()
    cases_sha256 = models.CharField(max_length=64)
    actor = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["version", "-created_at", "-id"], name="native_check_run_latest"),
        ]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        return f"checks of {self.version} {outcome} ({self.trigger})"
