"""Request and response shapes of the API (and of webhook payloads: ``run_out``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from ninja import Schema
from pydantic import Field, field_validator

from agentdesk.runtime.outcomes import Decision, RunStatus

from ..models import Escalation, Run, Step

RunStatusName = Literal[tuple(s.value for s in RunStatus)]  # type: ignore[valid-type]
ActionName = Literal[tuple(d.value for d in Decision)]  # type: ignore[valid-type]
EscalationStatusName = Literal[tuple(Escalation.Status.values)]  # type: ignore[valid-type]
_url = URLValidator(schemes=["http", "https"])
_json = DjangoJSONEncoder()
USD = Decimal("0.00000001")


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


class EscalationPage(Schema):
    items: list[EscalationOut]
    next_cursor: str | None


class ResolveIn(Schema):
    action: ActionName
    message: str = Field("", max_length=4000)
    args: dict[str, Any] | None = Field(None, description="Edited tool arguments (approve).")
    result: dict[str, Any] | None = Field(None, description="Your own result (take_over).")
    budget: dict[str, float | int | str] | None = Field(
        None, description="New limits (extend_budget), e.g. {\"max_steps\": 40}.")


class ResolveOut(Schema):
    escalation: EscalationOut
    run: RunOut


class AgentOut(Schema):
    slug: str
    name: str
    input_schema: dict[str, Any]


class AgentList(Schema):
    items: list[AgentOut]


def _iso(value: datetime | None) -> str | None:
    return _json.default(value) if value else None  # as the API renders datetimes


def _usd(value: Decimal) -> str:
    return f"{Decimal(value).quantize(USD):f}"


def run_out(run: Run, steps: list[Step] | None = None) -> dict[str, Any]:
    """A run as JSON-ready data (API responses and webhook payloads alike)."""
    if hasattr(run, "open_escalation_id"):
        escalation_id = run.open_escalation_id
    elif run.status == RunStatus.WAITING_HUMAN:
        escalation_id = (run.escalations.filter(status=Escalation.Status.OPEN)
                         .order_by("-pk").values_list("pk", flat=True).first())
    else:
        escalation_id = None
    data: dict[str, Any] = {
        "id": run.pk, "status": run.status, "reason": run.reason, "agent": run.agent.slug,
        "input": run.input, "answer": run.answer,
        "usage": {
            "steps": run.step_count, "tokens_in": run.tokens_in, "tokens_out": run.tokens_out,
            "tokens_cached": run.tokens_cached, "tokens_reasoning": run.tokens_reasoning,
            "cost_usd": _usd(run.cost_usd), "active_seconds": round(run.active_seconds, 3),
        },
        "escalation_id": escalation_id,
        "idempotency_key": run.idempotency_key or None,
        "callback_url": run.callback_url or None,
        "created_at": _iso(run.created_at), "updated_at": _iso(run.updated_at),
        "finished_at": _iso(run.finished_at),
    }
    if steps is not None:
        data["steps"] = [step_out(s) for s in steps]
    return data


def step_out(step: Step) -> dict[str, Any]:
    return {
        "index": step.index, "kind": step.kind, "name": step.name, "tier": step.tier,
        "model": step.model, "tokens_in": step.tokens_in, "tokens_out": step.tokens_out,
        "tokens_cached": step.tokens_cached, "cost_usd": _usd(step.cost_usd),
        "latency_ms": step.latency_ms, "confidence": step.confidence, "args": step.args or {},
        "result": step.result, "error": step.error, "attempts": step.attempts,
        "created_at": _iso(step.created_at),
    }


def escalation_out(esc: Escalation) -> dict[str, Any]:
    return {
        "id": esc.pk, "run_id": esc.run_id, "agent": esc.run.agent.slug, "status": esc.status,
        "reason": esc.reason, "question": esc.question, "proposed_tool": esc.proposed_tool,
        "proposed_args": esc.proposed_args or {}, "confidence": esc.confidence,
        "context": esc.context or [], "priority": esc.priority,
        "deadline_at": _iso(esc.deadline_at), "created_at": _iso(esc.created_at),
        "decision": esc.decision, "decision_message": esc.decision_message,
        "decided_by": esc.decided_by.get_username() if esc.decided_by else None,
        "decided_at": _iso(esc.decided_at),
    }
