"""The run's checkpointed state and the records a step produces.

``RunState`` is everything needed to resume a run on any worker: it is saved after every
step (with that step's record, in one transaction) and nothing else is kept in memory
between steps. Pydantic gives a validated JSON round trip for the checkpoint column.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, model_validator

from .options import ConditionOp, ConfidenceSignal, HumanTimeoutAction, OnBound, RuleAction
from .outcomes import Phase, Reason, RunStatus, StepKind
from .profiles import ModelProfile


class RuleCondition(BaseModel):
    field: str
    op: ConditionOp = ConditionOp.EQUALS
    value: Any = None


class RuleSpec(BaseModel):
    """A deterministic rule: conditions on the task input → an answer, a tool call or a human."""

    name: str
    conditions: list[RuleCondition] = Field(default_factory=list)
    action: RuleAction
    answer: str = ""
    tool: str = ""
    tool_args: dict[str, Any] = Field(default_factory=dict)
    question: str = ""


class PolicySnapshot(BaseModel):
    """The rules a run started with; later admin edits never change a running run."""

    max_steps: int = 20
    max_seconds: float = 300.0
    max_tokens: int = 50_000
    max_cost_usd: Decimal = Decimal("1.00")
    confidence_threshold: float = 0.7
    approval_amount_usd: Decimal | None = Decimal("100")
    approval_tools: list[str] = Field(default_factory=list)
    small_model: str = "sim-small"
    large_model: str = "sim-large"
    max_output_tokens: int = 512
    models: dict[str, ModelProfile] = Field(default_factory=dict)  # the catalogue's rows
    confidence_signals: list[ConfidenceSignal] = Field(
        default_factory=lambda: [ConfidenceSignal.SELF_REPORT])
    agreement_samples: int = 3  # k, when the agreement signal is on (each sample is paid for)
    agreement_temperature: float = 0.7
    review_sample_rate: float = 0.0  # share of confident, auto-completed runs sent to review
    confidently_wrong_target: float = 0.02  # the calibration's target rate
    calibration_window: int = 500  # the last N labels calibration reads
    on_bound: OnBound = OnBound.FAIL
    loop_repeat_limit: int = 3  # the same tool call with the same arguments this many times
    no_progress_limit: int = 4  # this many tool results in a row that bring nothing new
    downgrade_after: int = 2  # confident large-model steps before stepping back down
    cache_ttl_seconds: int = 300  # 0: no response cache
    human_timeout_seconds: int | None = None
    human_timeout_action: HumanTimeoutAction = HumanTimeoutAction.FAIL
    fallback_answer: str = ""
    rules: list[RuleSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _legacy_prices(cls, data: Any) -> Any:
        """Snapshots written before the model catalogue held only ``prices``."""
        if isinstance(data, dict) and "prices" in data and "models" not in data:
            data = dict(data)
            data["models"] = {
                name: {"name": name, "input_per_mtok": p.get("input"),
                       "cached_input_per_mtok": p.get("cached_input"),
                       "output_per_mtok": p.get("output")}
                for name, p in (data.pop("prices") or {}).items()
            }
        return data

    def profile(self, model: str) -> ModelProfile:
        """The model's profile; a model missing from the snapshot is an unpriced one."""
        return self.models.get(model) or ModelProfile(name=model)


class ToolCallProposal(BaseModel):
    """A tool call the model asked for, kept while a human decides on it."""

    call_id: str
    tool: str
    args: dict[str, Any]
    confidence: float | None = None


class Usage(BaseModel):
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    tokens_reasoning: int = 0
    cost_usd: Decimal = Decimal("0")

    def add(self, other: Usage) -> None:
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.tokens_cached += other.tokens_cached
        self.tokens_reasoning += other.tokens_reasoning
        self.cost_usd += other.cost_usd

    @property
    def total_tokens(self) -> int:
        return self.tokens_in + self.tokens_out


class HumanInput(BaseModel):
    """An operator's decision waiting to be applied when the run resumes."""

    decision: str
    message: str = ""
    operator: str = ""
    args: dict[str, Any] | None = None  # edited arguments (edit & approve)
    result: dict[str, Any] | None = None  # the operator's own result (take over)


class RunState(BaseModel):
    run_id: str
    agent: str
    input: dict[str, Any]
    status: RunStatus = RunStatus.QUEUED
    reason: Reason = Reason.NONE
    phase: Phase = Phase.RETRIEVE
    messages: list[dict[str, Any]] = Field(default_factory=list)
    context: list[dict[str, Any]] = Field(default_factory=list)
    step_count: int = 0
    usage: Usage = Field(default_factory=Usage)
    active_seconds: float = 0.0
    pending_call: ToolCallProposal | None = None
    human_input: HumanInput | None = None
    answer: str | None = None
    tier: str = "small"  # the tier the next decision starts at (sticky after an upgrade)
    large_streak: int = 0
    rules_checked: bool = False
    call_counts: dict[str, int] = Field(default_factory=dict)
    result_hashes: list[str] = Field(default_factory=list)
    stale_results: int = 0
    arg_repairs: int = 0
    # call signatures (proposals.call_signature) an operator rejected: never executed again
    # in this run without a new approval
    rejected_calls: list[str] = Field(default_factory=list)
    # model → the largest reported ÷ estimated prompt tokens seen in this run (tokens.py):
    # later calls to that model reserve their estimate times this, never less than the bound
    prompt_token_ratios: dict[str, float] = Field(default_factory=dict)


class StepRecord(BaseModel):
    """One row of the run's trace."""

    index: int
    kind: StepKind
    name: str = ""
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    latency_ms: int = 0
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str = ""
    attempts: int = 1
    confidence: float | None = None


class EscalationRequest(BaseModel):
    """What an operator needs to decide, from one screen."""

    reason: Reason
    question: str
    proposed_tool: str = ""
    proposed_args: dict[str, Any] = Field(default_factory=dict)
    confidence: float | None = None
    context: list[dict[str, Any]] = Field(default_factory=list)
