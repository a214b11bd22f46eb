"""AgentDesk's data: teams, agents and their policies, runs with their trace, escalations.

A Run's ``state`` column is the runtime's checkpoint (``RunState`` as JSON); the other run
columns mirror what people filter and sort on, and are written in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind

ZERO = Decimal("0")


def _choices(enum: type) -> list[tuple[str, str]]:
    return [(m.value, m.value.replace("_", " ") or "—") for m in enum]


class Team(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    daily_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(ZERO)],
        help_text="Model spend allowed per UTC day across all runs. Empty: unlimited.",
    )

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


class TeamDailySpend(models.Model):
    """Today's model spend of a team: reserved before each call, settled after it.

    Reservations are conditional UPDATEs (``spent + reserved + x <= budget``), so any number
    of workers running the team's runs at once can never overshoot the budget.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="daily_spend")
    day = models.DateField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=8, default=ZERO)
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=ZERO)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "day"], name="one_spend_per_day")]

    def __str__(self) -> str:
        return f"{self.team} {self.day}: {self.spent_usd}"


class ModelPrice(models.Model):
    """USD per million tokens, from the provider's price list."""

    model = models.CharField(max_length=100, unique=True)
    input_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)
    cached_input_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)
    output_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)

    def __str__(self) -> str:
        return self.model


class Policy(models.Model):
    name = models.CharField(max_length=200, unique=True)
    max_steps = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    max_seconds = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1)])
    max_tokens = models.PositiveIntegerField(default=50_000, validators=[MinValueValidator(1)])
    max_cost_usd = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("1.00"),
                                       validators=[MinValueValidator(ZERO)])
    max_output_tokens = models.PositiveIntegerField(default=512,
                                                    validators=[MinValueValidator(16)])
    confidence_threshold = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Decisions below this confidence go up a tier, then to a human.",
    )
    approval_amount_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, default=Decimal("100"),
        validators=[MinValueValidator(ZERO)],
        help_text="Side-effecting tool calls with an amount above this need approval. "
                  "Empty: no amount rule.",
    )
    approval_tools = models.JSONField(
        default=list, blank=True,
        help_text='Tools that always need approval, e.g. ["issue_refund"].',
    )
    small_model = models.CharField(max_length=100, default="sim-small")
    large_model = models.CharField(max_length=100, default="sim-large", blank=True)
    downgrade_after = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)],
        help_text="Confident large-model steps in a row before the run steps back down.",
    )
    on_bound = models.CharField(
        max_length=10, choices=[("fail", "fail"), ("escalate", "escalate to a human")],
        default="fail", help_text="What hitting a limit does: fail the run, or let a human "
                                  "extend the budget.",
    )
    loop_repeat_limit = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)],
        help_text="The same tool call with the same arguments more often than this is a loop.",
    )
    no_progress_limit = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1)],
        help_text="Tool results in a row that bring nothing new before the loop stops.",
    )
    cache_ttl_seconds = models.PositiveIntegerField(
        default=300, help_text="Identical deterministic model requests are served from a "
                               "cache this long. 0: off.",
    )
    human_timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, default=3600,
        help_text="How long an escalation may wait for a human. Empty: forever.",
    )
    human_timeout_action = models.CharField(
        max_length=10, choices=[("fail", "fail the run"), ("fallback", "send the fallback answer")],
        default="fail",
    )
    fallback_answer = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        known = set(ModelPrice.objects.values_list("model", flat=True))
        for field in ("small_model", "large_model"):
            name = getattr(self, field)
            if name and known and name not in known:
                errors[field] = f"Unknown model {name!r}; known: {', '.join(sorted(known))}."
        if not isinstance(self.approval_tools, list) or not all(
            isinstance(t, str) for t in self.approval_tools
        ):
            errors["approval_tools"] = "A JSON list of tool names."
        if self.human_timeout_action == "fallback" and not self.fallback_answer.strip():
            errors["fallback_answer"] = "A fallback answer is needed for the fallback action."
        if errors:
            raise ValidationError(errors)


class Rule(models.Model):
    """A deterministic rule checked before any model: conditions on the input → an action."""

    class Action(models.TextChoices):
        ANSWER = "answer", "answer from a template"
        TOOL = "tool", "make a fixed tool call"
        ESCALATE = "escalate", "send to a human"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    conditions = models.JSONField(
        default=list,
        help_text='All must hold, e.g. [{"field": "message", "op": "contains", "value": '
                  '"password"}]. Ops: equals, contains, regex, gt, lt, exists.',
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    answer = models.TextField(blank=True, default="",
                              help_text="Template for the answer; {message} etc. from the input.")
    tool = models.CharField(max_length=100, blank=True, default="")
    tool_args = models.JSONField(default=dict, blank=True)
    question = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from agentdesk.runtime.state import RuleSpec

        errors: dict[str, str] = {}
        try:
            RuleSpec.model_validate(self.as_spec_dict())
        except Exception as exc:
            errors["conditions"] = f"Invalid rule: {exc}"
        ops = {"equals", "contains", "regex", "gt", "lt", "exists"}
        if isinstance(self.conditions, list):
            if not self.conditions:
                errors["conditions"] = "At least one condition."
            for cond in self.conditions:
                if not isinstance(cond, dict) or cond.get("op", "equals") not in ops:
                    errors["conditions"] = f"Each condition needs a field and an op in {ops}."
        if self.action == self.Action.ANSWER and not self.answer.strip():
            errors["answer"] = "An answer template is needed."
        if self.action == self.Action.TOOL and not self.tool:
            errors["tool"] = "Name the tool to call."
        if errors:
            raise ValidationError(errors)

    def as_spec_dict(self) -> dict:
        return {
            "name": self.name, "conditions": self.conditions, "action": self.action,
            "answer": self.answer, "tool": self.tool, "tool_args": self.tool_args,
            "question": self.question,
        }


class Agent(models.Model):
    """A team's use of a shipped agent (``slug`` names its code in ``agentdesk.agents``)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="agents")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    input_schema = models.JSONField(default=dict, blank=True)
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="agents")
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "slug"], name="agent_per_team")]

    def __str__(self) -> str:
        return f"{self.slug} ({self.team.slug})"


class Run(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    input = models.JSONField()
    status = models.CharField(max_length=20, choices=_choices(RunStatus),
                              default=RunStatus.QUEUED)
    reason = models.CharField(max_length=40, choices=_choices(Reason), default="", blank=True)
    answer = models.TextField(blank=True, default="")
    policy_snapshot = models.JSONField()
    state = models.JSONField()
    step_count = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    tokens_cached = models.PositiveBigIntegerField(default=0)
    tokens_reasoning = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=ZERO)
    active_seconds = models.FloatField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at"], name="run_team_recent"),
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return RunStatus(self.status).is_terminal

    @property
    def usage_bars(self) -> list[dict[str, object]]:
        """Usage against the snapshot's limits, for the run page's bars."""
        snap = self.policy_snapshot or {}
        pairs = [
            ("Steps", self.step_count, snap.get("max_steps")),
            ("Tokens", self.tokens_in + self.tokens_out, snap.get("max_tokens")),
            ("Cost (USD)", self.cost_usd, snap.get("max_cost_usd")),
            ("Active seconds", round(self.active_seconds, 1), snap.get("max_seconds")),
        ]
        bars = []
        for label, used, limit in pairs:
            limit_f = float(limit) if limit else 0.0
            pct = min(100.0, float(used) / limit_f * 100) if limit_f else 0.0
            bars.append({"label": label, "used": used, "limit": limit, "pct": round(pct, 1)})
        return bars


class Step(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=_choices(StepKind))
    name = models.CharField(max_length=100, blank=True, default="")
    tier = models.CharField(max_length=20, blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    tokens_cached = models.PositiveIntegerField(default=0)
    tokens_reasoning = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=ZERO)
    latency_ms = models.PositiveIntegerField(default=0)
    confidence = models.FloatField(null=True, blank=True)
    args = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_step_per_index")]

    def __str__(self) -> str:
        return f"#{self.index} {self.kind} {self.name}"


class Escalation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DECIDED = "decided"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="escalations")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escalations")
    step_index = models.PositiveIntegerField()
    reason = models.CharField(max_length=40, choices=_choices(Reason))
    question = models.TextField()
    proposed_tool = models.CharField(max_length=100, blank=True, default="")
    proposed_args = models.JSONField(default=dict, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    context = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    decision = models.CharField(max_length=20, blank=True, default="")
    decision_message = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "status", "-created_at"], name="esc_inbox"),
            models.Index(fields=["status", "deadline_at"], name="esc_deadline"),
        ]

    def __str__(self) -> str:
        return f"Escalation {self.pk} ({self.reason}, {self.status})"


class ToolCall(models.Model):
    """The ledger: one row per tool execution, keyed ``run:step`` so none runs twice."""

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tool_calls")
    idempotency_key = models.CharField(max_length=100, unique=True)
    tool = models.CharField(max_length=100)
    args = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.tool} [{self.idempotency_key}] {self.status}"
