"""Policies (limits, thresholds, models, approval rules) and their rules."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from agentdesk.agents import AGENTS, get_agent
from agentdesk.runtime.agent import AgentSpec
from agentdesk.runtime.options import (
    ConditionOp,
    ConfidenceSignal,
    HumanTimeoutAction,
    OnBound,
    RuleAction,
)
from agentdesk.runtime.rules import placeholders, template_errors
from agentdesk.runtime.state import PolicySnapshot, RuleSpec
from agentdesk.runtime.tools import ArgumentsInvalid

from .catalogue import ModelProfile
from .common import ZERO
from .teams import Team


def default_signals() -> list[str]:
    return [ConfidenceSignal.SELF_REPORT.value]


class Policy(models.Model):
    # A team's policy: its team admins edit it and its agents use it (``runs.permissions``).
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="policies")
    name = models.CharField(max_length=200)
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
        help_text='Tools that always need approval, e.g. ["issue_refund"]. Each must be a '
                  "tool of an agent using this policy (of any installed agent while none does).",
    )
    small_model = models.CharField(max_length=100, default="sim-small")
    large_model = models.CharField(max_length=100, default="sim-large", blank=True)
    downgrade_after = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)],
        help_text="Confident large-model steps in a row before the run steps back down.",
    )
    on_bound = models.CharField(
        max_length=10,
        choices=[(OnBound.FAIL, "fail"), (OnBound.ESCALATE, "escalate to a human")],
        default=OnBound.FAIL, help_text="What hitting a limit does: fail the run, or let a human "
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
        max_length=10,
        choices=[(HumanTimeoutAction.FAIL, "fail the run"),
                 (HumanTimeoutAction.FALLBACK, "send the fallback answer")],
        default=HumanTimeoutAction.FAIL,
    )
    fallback_answer = models.TextField(blank=True, default="")
    confidence_signals = models.JSONField(
        default=default_signals, blank=True,
        help_text='Where confidence comes from, combined: any of "self_report", "logprobs" '
                  '(the model must return them: admin → Models), "agreement" (k samples).',
    )
    agreement_samples = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(2), MaxValueValidator(10)],
        help_text="k samples from the same tier for the agreement signal (each is paid for).")
    agreement_temperature = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    review_sample_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of confident, auto-completed runs sent to the review queue "
                  "(0.05 = 5 %), so the confident side gets labels too.")
    confidently_wrong_target = models.FloatField(
        default=0.02, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The rate of confidently wrong actions calibration keeps under.")
    calibration_window = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(20)],
        help_text="Calibration reads the last N labels.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"
        constraints = [models.UniqueConstraint(fields=["team", "name"],
                                               name="policy_name_per_team")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        known = set(ModelProfile.objects.values_list("name", flat=True))
        for field in ("small_model", "large_model"):
            name = getattr(self, field)
            if name and name not in known:
                errors[field] = (f"Unknown model {name!r}: add it under Models first; known: "
                                 f"{', '.join(sorted(known)) or 'none'}.")
        errors.update(self._signal_errors())
        if not isinstance(self.approval_tools, list) or not all(
            isinstance(t, str) for t in self.approval_tools
        ):
            errors["approval_tools"] = "A JSON list of tool names."
        else:  # a misspelt name would make the approval gate guard nothing
            tools = known_tools(agents_of(self.pk))
            unknown = [t for t in self.approval_tools if t not in tools]
            if unknown:
                errors["approval_tools"] = (
                    f"Unknown tool {', '.join(map(repr, unknown))}; known tools: "
                    f"{', '.join(sorted(tools))}.")
        fallback = self.human_timeout_action == HumanTimeoutAction.FALLBACK
        if fallback and not self.fallback_answer.strip():
            errors["fallback_answer"] = "A fallback answer is needed for the fallback action."
        if errors:
            raise ValidationError(errors)

    def _signal_errors(self) -> dict[str, str]:
        """Signals must be known, and logprobs needs models whose endpoint returns them."""
        signals = self.confidence_signals
        allowed = ", ".join(f'"{s.value}"' for s in ConfidenceSignal)
        if not isinstance(signals, list) or not signals or any(
                s not in {c.value for c in ConfidenceSignal} for s in signals):
            return {"confidence_signals": f"A non-empty JSON list of {allowed}."}
        if ConfidenceSignal.LOGPROBS in signals:
            names = [n for n in (self.small_model, self.large_model) if n]
            without = sorted(set(names) - set(ModelProfile.objects.filter(
                name__in=names, logprobs=True).values_list("name", flat=True)))
            if without:
                return {"confidence_signals": f"{', '.join(without)} do(es) not return logprobs "
                        "(admin → Models, or manage.py probe_model)."}
        return {}

    def snapshot(self) -> PolicySnapshot:
        """What a run starts with: every field the snapshot knows, read from this row by
        name (no hand copy to forget a new field in), plus its models' catalogue rows and
        its enabled rules."""
        own = {f.name for f in self._meta.concrete_fields} & PolicySnapshot.model_fields.keys()
        rows = ModelProfile.objects.filter(name__in=[self.small_model, self.large_model])
        return PolicySnapshot.model_validate({
            **{name: getattr(self, name) for name in own},
            "models": {row.name: row.profile() for row in rows},
            "rules": [r.spec() for r in self.rules.filter(enabled=True)],
        })


class Rule(models.Model):
    """A deterministic rule checked before any model: conditions on the input → an action."""

    Action = RuleAction
    ACTION_LABELS = {RuleAction.ANSWER: "answer from a template",
                     RuleAction.TOOL: "make a fixed tool call",
                     RuleAction.ESCALATE: "send to a human"}

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    conditions = models.JSONField(
        default=list,
        help_text='All must hold, e.g. [{"field": "message", "op": "contains", "value": '
                  '"password"}]. Ops: equals, contains, regex, gt, lt, exists.',
    )
    action = models.CharField(max_length=10, choices=list(ACTION_LABELS.items()))
    answer = models.TextField(
        blank=True, default="",
        help_text="Template for the answer. Placeholders are the task input's text and number "
                  "fields by name, e.g. {message} for support-refunds; nothing else: no {0}, "
                  "no {message.attr} or {message[0]}, no unknown names. Write {{ and }} for "
                  "literal braces.",
    )
    tool = models.CharField(max_length=100, blank=True, default="")
    tool_args = models.JSONField(default=dict, blank=True)
    question = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self.spec()
        except Exception as exc:
            errors.setdefault("conditions", []).append(f"Invalid rule: {exc}")
        ops = set(ConditionOp)
        if isinstance(self.conditions, list):
            if not self.conditions:
                errors.setdefault("conditions", []).append("At least one condition.")
            for number, cond in enumerate(self.conditions, 1):
                if not isinstance(cond, dict) or cond.get("op", "equals") not in ops:
                    errors.setdefault("conditions", []).append(
                        f"Each condition needs a field and an op in {ops}.")
                elif problem := _regex_problem(cond):
                    errors.setdefault("conditions", []).append(f"Condition {number} {problem}")
        agents = agents_of(self.policy_id)
        if self.action == self.Action.ANSWER:
            if not self.answer.strip():
                errors["answer"] = ["An answer template is needed."]
            elif problems := template_errors(self.answer, allowed := answer_placeholders(agents)):
                shown = ", ".join("{" + name + "}" for name in allowed)
                errors["answer"] = [f"{'; '.join(problems)}. Allowed placeholders: {shown}."]
        if self.action == self.Action.TOOL:
            if not self.tool:
                errors["tool"] = ["Name the tool to call."]
            elif self.tool not in (tools := known_tools(agents)):
                errors["tool"] = [f"Unknown tool {self.tool!r}; known tools: "
                                  f"{', '.join(sorted(tools))}."]
            elif isinstance(self.tool_args, dict):
                errors.update(_tool_args_problems(agents, self.tool, self.tool_args))
        if errors:
            raise ValidationError(errors)

    def spec(self) -> RuleSpec:
        """The rule as the runtime evaluates it (fields read by name, like the policy's)."""
        return RuleSpec.model_validate(
            {name: getattr(self, name) for name in RuleSpec.model_fields})


# -- what a policy's agents offer: the universe its tool names and placeholders come from --


def agents_of(policy_id: int | None) -> list[AgentSpec]:
    """The installed agents a policy serves (its Agent rows' slugs); for a policy no agent
    uses yet, every installed agent, so it can be set up before it is assigned."""
    slugs = set()
    if policy_id is not None:
        slugs = {s for s in Policy.objects.filter(pk=policy_id)
                 .values_list("agents__slug", flat=True) if s}
    specs = [spec for slug in sorted(slugs) if (spec := get_agent(slug)) is not None]
    return specs or list(AGENTS.values())


def known_tools(agents: list[AgentSpec]) -> set[str]:
    return {name for spec in agents for name in spec.tools.tools}


def answer_placeholders(agents: list[AgentSpec]) -> list[str]:
    return sorted({name for spec in agents for name in placeholders(spec.input_json_schema())})


def _regex_problem(cond: dict) -> str:
    """Why a ``regex`` condition's pattern would never match (it is compiled as the runtime
    compiles it), or ``""``."""
    if cond.get("op") != ConditionOp.REGEX:
        return ""
    try:
        re.compile(str(cond.get("value")), re.IGNORECASE)
    except re.error as exc:
        return (f"({cond.get('field')} regex {cond.get('value')!r}) is not a valid regular "
                f"expression: {exc}.")
    return ""


def _tool_args_problems(agents: list[AgentSpec], tool_name: str,
                        args: dict) -> dict[str, list[str]]:
    """The fixed arguments must fit the tool of every agent that has it."""
    for spec in agents:
        tool = spec.tools.get(tool_name)
        if tool is None:
            continue
        try:
            tool.validate(args)
        except ArgumentsInvalid as exc:
            fields = "; ".join(f"{name or 'arguments'}: {', '.join(msgs)}"
                               for name, msgs in exc.fields.items())
            return {"tool_args": [f"These arguments do not fit {tool_name}: {fields}."]}
    return {}
