"""What people said about the agent's confidence: labels, and the review sample they come from.

A ``ConfidenceLabel`` is one judgement of one model step: the confidence it reported, and
whether a human found it right. Decisions on escalations write them (approve as proposed =
right; reject, edit, reply instead of or take over = wrong), and so do reviews of a sample of
confident runs that no human saw (``ReviewItem``), so calibration sees both sides of the
threshold. Calibration reads the last N labels per agent and tier
(``runs.calibrations``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .runs import Agent, Run
from .teams import Team


class ConfidenceLabel(models.Model):
    class Source(models.TextChoices):
        DECISION = "decision"  # an operator's decision on an escalation
        REVIEW = "review"  # a reviewer's verdict on a sampled, auto-completed run

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="labels")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="labels")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="labels")
    step_index = models.PositiveIntegerField(help_text="The model step judged.")
    tier = models.CharField(max_length=20)
    model = models.CharField(max_length=100, blank=True, default="")
    confidence = models.FloatField()
    correct = models.BooleanField()
    source = models.CharField(max_length=10, choices=Source.choices)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # calibration: the last N labels of an agent's tier
            models.Index(fields=["agent", "tier", "-created_at", "-id"], name="label_recent"),
        ]
        constraints = [
            # a step is judged once per source (the decision's and the review's conditional
            # updates already make sure; this states it)
            models.UniqueConstraint(fields=["run", "step_index", "source"],
                                    name="one_label_per_step_and_source"),
        ]

    def __str__(self) -> str:
        verdict = "right" if self.correct else "wrong"
        return f"{self.agent_id}/{self.tier} {self.confidence:.2f} {verdict} ({self.source})"


class ReviewItem(models.Model):
    """A confident, auto-completed run sampled for a human to look at after the fact."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"  # the agent was right
        FLAGGED = "flagged"  # the agent was wrong

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="review_items")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="review")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="review_items")
    step_index = models.PositiveIntegerField(help_text="The model step that decided the end.")
    tier = models.CharField(max_length=20)
    model = models.CharField(max_length=100, blank=True, default="")
    confidence = models.FloatField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "status", "-created_at"], name="review_queue")]

    def __str__(self) -> str:
        return f"Review of run {self.run_id} ({self.status})"
