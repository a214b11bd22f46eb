"""Request and response shapes of the API, for validation and the OpenAPI document. The data
that fills them comes from ``runs.representations`` (shared with webhook payloads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from ninja import Schema
from pydantic import Field, field_validator

from agentdesk.runtime.outcomes import Decision, RunStatus

from ..models import Escalation

RunStatusName = Literal[tuple(s.value for s in RunStatus)]  # type: ignore[valid-type]
ActionName = Literal[tuple(d.value for d in Decision)]  # type: ignore[valid-type]
EscalationStatusName = Literal[tuple(Escalation.Status.values)]  # type: ignore[valid-type]
_url = URLValidator(schemes=["http", "https"])


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class ErrorOut(Schema):
    error: ErrorBody


class RunIn(Schema):
    agent: str = Field(min_length=1, max_length=50, examples=["support-refunds"])
    input: dict[str, Any] = Field(examples=[{"message": "Where is my order 1077?"}])
    idempotency_key: str | None = Field(None, min_length=1, max_length=200,
                                        pattern=r"^[\x21-\x7e]+$")
    callback_url: str | None = Field(None, max_length=200,
                                     examples=["https://example.com/hooks/agentdesk"])

    @field_validator("callback_url")
    @classmethod
    def http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            _url(value)
        except DjangoValidationError:
            raise ValueError("Must be an http(s) URL.") from None
        return value


class Usage(Schema):
    steps: int
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    tokens_reasoning: int
    cost_usd: str = Field(description="USD, as a decimal string.")
    active_seconds: float


class RunOut(Schema):
    id: int
    status: RunStatusName
    reason: str = Field(description="Why it paused or ended; empty for a plain success.")
    agent: str
    input: dict[str, Any]
    answer: str
    overridden: bool = Field(description="An operator rejected, edited, answered instead of "
                             "or took over an action the agent proposed.")
    usage: Usage
    escalation_id: int | None = Field(description="The open escalation while waiting_human.")
    idempotency_key: str | None
    callback_url: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class StepOut(Schema):
    index: int
    kind: str
    name: str
    tier: str
    model: str
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    cost_usd: str
    latency_ms: int
    confidence: float | None
    args: dict[str, Any]
    result: Any = None
    error: str
    attempts: int
    created_at: datetime


class RunDetailOut(RunOut):
    steps: list[StepOut] | None = Field(None, description="With ?include=steps.")


class RunPage(Schema):
    items: list[RunOut]
    next_cursor: str | None


class EscalationOut(Schema):
    id: int
    run_id: int
    agent: str
    status: EscalationStatusName
    reason: str
    question: str
    proposed_tool: str
    proposed_args: dict[str, Any]
    confidence: float | None
    context: list[Any]
    priority: int
    deadline_at: datetime | None
    created_at: datetime
    decision: str
    decision_message: str
    decided_by: str | None
    decided_at: datetime | None
    assigned_to: str | None = Field(None, description="Username of the assignee.")
    assigned_at: datetime | None = None


class EscalationPage(Schema):
    items: list[EscalationOut]
    next_cursor: str | None


class ResolveIn(Schema):
    action: ActionName
    message: str = Field("", max_length=4000)
    args: dict[str, Any] | None = Field(None, description="Edited tool arguments (approve).")
    result: dict[str, Any] | None = Field(None, description="Your own result (take_over).")
    budget: dict[str, float | int | str] | None = Field(
        None, description="New limits (extend_budget), e.g. {\"max_steps\": 40}. After a "
        "team_budget bound: {\"team_budget_usd\": 5} adds 5 USD to the team's budget for "
        "today; that needs a team admin, so an API key is refused (403).")


class AssignIn(Schema):
    user: str | None = Field(
        ..., max_length=150,
        description="Username of a member of the escalation's team; null to unassign.")


class ResolveOut(Schema):
    escalation: EscalationOut
    run: RunOut


class AgentOut(Schema):
    slug: str
    name: str
    input_schema: dict[str, Any]


class AgentList(Schema):
    items: list[AgentOut]
