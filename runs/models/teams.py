"""Teams, their members and their API keys."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from .common import ZERO


def new_webhook_secret() -> str:
    """A team's webhook signing key: 256 random bits."""
    return "whsec_" + secrets.token_urlsafe(32)


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
    # Webhooks are always signed (runs.webhooks): every team has a secret from its creation,
    # shown in full once; rotating keeps the previous one signing for a grace period.
    webhook_secret = models.CharField(
        max_length=100, default=new_webhook_secret, editable=False,
        help_text="HMAC-SHA256 key that signs webhook bodies (shown in full only once).")
    webhook_secret_previous = models.CharField(
        max_length=100, blank=True, default="", editable=False,
        help_text="The secret before the last rotation: it still signs during the grace period.")
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Round-robin assignment of new escalations (``runs.assignment``).
    auto_assign = models.BooleanField(
        default=False, verbose_name="assign new escalations automatically",
        help_text="Round-robin among the team's members active in the console lately.")
    auto_assign_active_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1)],
        verbose_name="active within (minutes)",
        help_text="Only members who used the console this recently get new escalations.")
    auto_assign_last = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", editable=False,
        help_text="The member who got the last automatic assignment (the round-robin turn).")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a team; what each role may do is ``runs.permissions``."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "viewer (read-only console)"
        OPERATOR = "operator", "operator (claims and decides)"
        ADMIN = "admin", "team admin (administers the team)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)
    # When the member last used the console (``runs.assignment.touch``, at most once a minute).
    last_active_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    def save(self, *args, **kwargs) -> None:
        """A team admin administers the team in Django admin, which lets only staff in: the
        membership makes the user staff. What staff may see there comes from the team
        admin memberships alone (``permissions.TeamAdminBackend``), so nothing is taken
        back here when the role goes: a staff user who is no team admin sees nothing."""
        super().save(*args, **kwargs)
        if self.role == self.Role.ADMIN:
            users = self._meta.get_field("user").related_model._default_manager
            users.filter(pk=self.user_id, is_staff=False).update(is_staff=True)


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
