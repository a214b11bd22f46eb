"""Agents, runs with their trace (steps), the tool ledger and the team's daily spend.

A Run's ``state`` column is the runtime's checkpoint (``RunState`` as JSON without the
transcript, which its steps carry: ``runs.checkpoints``; ``{}`` until a worker first
advances the run); the other run columns mirror what people filter and sort on, and are
written in the same transaction.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models

from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import PolicySnapshot

from .common import ZERO, choices_of
from .policies import Policy
from .snapshots import PolicySnapshotRecord
from .teams import Team


class Agent(models.Model):
    """A team's agent: an installed one (``slug`` names its code: ``agentdesk.agents``), or
    one defined here with no code — instructions, an input schema, tools chosen from code
    tools, MCP servers and HTTP tools, and knowledge documents (``runs.agent_specs``)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="agents")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    input_schema = models.JSONField(
        default=dict, blank=True,
        help_text="Agents defined here: JSON schema of the task input. Empty: one 'message' "
                  "text field. Installed agents: filled in from their code.")
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="agents")
    enabled = models.BooleanField(default=True)
    instructions = models.TextField(
        blank=True, default="",
        help_text="Defines the agent here, with no code: what it does and how (the system "
                  "prompt). Leave empty for an installed agent.")
    code_tools = models.JSONField(
        default=list, blank=True,
        help_text="Names of tools from installed packages this agent may use.")
    mcp_servers = models.ManyToManyField("McpServer", blank=True, related_name="agents",
                                         verbose_name="MCP servers")
    http_tools = models.ManyToManyField("HttpTool", blank=True, related_name="agents",
                                        verbose_name="HTTP tools")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "slug"], name="agent_per_team")]

    def __str__(self) -> str:
        return f"{self.slug} ({self.team.slug})"

    @property
    def defined_in_admin(self) -> bool:
        return bool(self.instructions.strip())


class Run(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs",
                             db_index=False)  # run_team_recent and run_team_status start with it
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", db_index=False)
    input = models.JSONField()
    status = models.CharField(max_length=20, choices=choices_of(RunStatus),
                              default=RunStatus.QUEUED)
    reason = models.CharField(max_length=40, choices=choices_of(Reason), default="", blank=True)
    answer = models.TextField(blank=True, default="")
    overridden = models.BooleanField(
        default=False,
        help_text="An operator rejected, edited, answered instead of or took over an action "
                  "the agent proposed: a success after this is not the agent's own.",
    )
    # The policy this run started with (``runs.models.snapshots``: stored once, shared by
    # the runs that start with the same one). Never deleted while runs point at it, and
    # never looked up by run: no index.
    snapshot = models.ForeignKey(PolicySnapshotRecord, on_delete=models.PROTECT,
                                 related_name="+", db_index=False)
    state = models.JSONField()
    step_count = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    tokens_cached = models.PositiveBigIntegerField(default=0)
    tokens_reasoning = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=ZERO)
    active_seconds = models.FloatField(default=0)
    idempotency_key = models.CharField(max_length=200, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True, default="")
    callback_url = models.URLField(blank=True, default="")
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="runs", db_index=False)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The team-budget reservation the lease holder has out for its model call in flight
    # (``runs.budgets``): written in the transaction of the TeamDailySpend change, so a
    # worker that dies mid-call leaves it attributable, and whoever takes the lease away
    # (the reaper, a new worker, a cancel) releases it, once.
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=ZERO)
    reserved_on = models.DateField(null=True, blank=True,
                                   help_text="The day (TeamDailySpend row) it is held on.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Until when someone has this run's page open (``runs.watchers``): each checkpoint reads
    # it back in its own statement, so knowing whether to render the step costs nothing.
    watched_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at"], name="run_team_recent"),
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease"),
            models.Index(fields=["team", "status"], name="run_team_status"),
            # who submitted: most runs have no user, or no key, and need no index entry
            models.Index(fields=["created_by"], name="run_created_by",
                         condition=models.Q(created_by__isnull=False)),
            models.Index(fields=["api_key"], name="run_api_key",
                         condition=models.Q(api_key__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "idempotency_key"], condition=~models.Q(idempotency_key=""),
                name="one_run_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A ``policy_snapshot`` set on the instance is stored (once) as it is saved."""
        pending = self.__dict__.pop("_pending_snapshot", None)
        if pending is not None:
            self.snapshot = PolicySnapshotRecord.of(pending)
        super().save(*args, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return RunStatus(self.status).is_terminal

    @property
    def policy_snapshot(self) -> dict[str, Any]:
        """The policy this run started with, as JSON. Setting it (``Run(policy_snapshot=
        ...)``) points the run at the stored snapshot with that content when it is saved."""
        pending = self.__dict__.get("_pending_snapshot")
        return pending if pending is not None else self.snapshot.data

    @policy_snapshot.setter
    def policy_snapshot(self, data: dict[str, Any]) -> None:
        self.__dict__["_pending_snapshot"] = data
        self.__dict__.pop("policy", None)

    @cached_property
    def policy(self) -> PolicySnapshot:
        """The policy this run started with, typed. Snapshots are written only by
        ``runs.lifecycle``/``runs.services``; everything else reads this."""
        return PolicySnapshot.model_validate(self.policy_snapshot or {})

    @property
    def usage_bars(self) -> list[dict[str, object]]:
        """Usage against the snapshot's limits, for the run page's bars."""
        policy = self.policy
        pairs = [
            ("Steps", self.step_count, policy.max_steps),
            ("Tokens", self.tokens_in + self.tokens_out, policy.max_tokens),
            ("Cost (USD)", self.cost_usd, policy.max_cost_usd),
            ("Active seconds", round(self.active_seconds, 1), policy.max_seconds),
        ]
        bars = []
        for label, used, limit in pairs:
            limit_f = float(limit) if limit else 0.0
            # A run can go past a bound (the escalation, the human decision and the final
            # step come after it): the bar stays full and says so, never "4 / 2" at 100 %.
            reached = bool(limit_f) and float(used) >= limit_f
            pct = min(100.0, float(used) / limit_f * 100) if limit_f else 0.0
            bars.append({"label": label, "used": used, "limit": limit, "pct": round(pct, 1),
                         "reached": reached, "over": bool(limit_f) and float(used) > limit_f})
        return bars


class Step(models.Model):
    # looked up by run through ``one_step_per_index`` (run, index): no index of its own
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=choices_of(StepKind))
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
    # The part of the run's transcript this step added (``runs.checkpoints``): the step
    # rows are the conversation's history; the run row keeps only what changes.
    transcript = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_step_per_index")]

    def __str__(self) -> str:
        return f"#{self.index} {self.kind} {self.name}"


class ToolCall(models.Model):
    """The ledger: one row per tool execution, keyed ``run:step`` so none runs twice."""

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tool_calls")
    idempotency_key = models.CharField(max_length=100)
    tool = models.CharField(max_length=100)
    args = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # a constraint, not ``unique=True``: on Postgres that adds a second index on the
        # key (for LIKE), which nothing here asks
        constraints = [models.UniqueConstraint(fields=["idempotency_key"],
                                               name="one_tool_call_per_key")]

    def __str__(self) -> str:
        return f"{self.tool} [{self.idempotency_key}] {self.status}"


class TeamDailySpend(models.Model):
    """Today's model spend of a team: reserved before each call, settled after it.

    Reservations are conditional UPDATEs (``spent + reserved + x <= budget + extra``), so
    any number of workers running the team's runs at once can never overshoot the budget.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="daily_spend")
    day = models.DateField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=8, default=ZERO)
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=ZERO)
    extra_usd = models.DecimalField(
        max_digits=14, decimal_places=8, default=ZERO,
        help_text="Added to the team's daily budget for this day only, by team admins "
                  "extending it after a team_budget escalation (audited).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "day"], name="one_spend_per_day")]

    def __str__(self) -> str:
        return f"{self.team} {self.day}: {self.spent_usd}"
