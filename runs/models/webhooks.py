"""Webhook deliveries: each event POSTed to a receiver, retried until delivered."""

from __future__ import annotations

from django.db import models

from .runs import Run


class WebhookDelivery(models.Model):
    """One event POSTed to a receiver, retried with backoff until it is delivered."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=40)
    # The run's step count when the event happened: a run may wait for a human more than
    # once, and each wait is its own event (the unique key makes emission idempotent).
    seq = models.PositiveIntegerField(default=0)
    url = models.URLField()
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]
        constraints = [
            models.UniqueConstraint(fields=["run", "event", "seq"],
                                    name="one_delivery_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"
