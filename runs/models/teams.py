"""Teams, their members and their API keys."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from .common import ZERO


class Team(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    daily_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(ZERO)],
        help_text="Model spend allowed per UTC day across all runs. Empty: unlimited.",
    )
    max_running_runs = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Runs of this team advanced at once; more wait queued. Empty: no cap.",
    )
    callback_url = models.URLField(blank=True, default="",
                                   help_text="Default webhook for runs without their own.")
    webhook_secret = models.CharField(max_length=100, blank=True, default="",
                                      help_text="HMAC-SHA256 key that signs webhook bodies.")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OPERATOR = "operator"
        ADMIN = "admin"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class ApiKey(models.Model):
    """A team's key for the REST API. Only a hash is stored; the key is shown once."""

    class Scope(models.TextChoices):
        SUBMIT = "submit"
        READ = "read"
        RESOLVE = "resolve"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    hashed_key = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
