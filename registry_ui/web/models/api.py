"""API tokens and the answers kept for Idempotency-Key retries (registry_ui.web.api)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# What a token may do; each endpoint needs one of them (docs/api.md, "Scopes").
SCOPES = ("read", "register", "request", "review", "outcomes")


class ApiToken(models.Model):
    """A bearer token for the HTTP API; only its SHA-256 is kept, the token is shown once.

    A token acts as ``user``: the API applies that account's permissions, and the token's
    scopes narrow them further. Personal tokens are made by the user for themselves;
    service tokens by an administrator for a service account (a CI pipeline). A service
    token never approves or rejects a request, whatever its account may do: a pipeline
    cannot be one of the four eyes.
    """

    class Kind(models.TextChoices):
        PERSONAL = "personal"
        SERVICE = "service"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scopes = models.JSONField(default=list)
    token_sha256 = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)  # the first characters, to tell tokens apart
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="one_api_token_name_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    @property
    def label(self) -> str:
        """How the audit trail names the token."""
        return f"{self.kind} token {self.name!r} ({self.prefix}...)"

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class IdempotentCall(models.Model):
    """The answer to a write made with an Idempotency-Key, given again to a retry."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="calls")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of the method, path and body
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="one_call_per_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} -> {self.status}"
