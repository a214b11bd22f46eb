"""A run, a step and an escalation as JSON-ready data: one representation for the REST
API's responses and the webhook payloads, so a receiver sees what a GET returns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from agentdesk.runtime.outcomes import RunStatus

from .models import Escalation, Run, Step

_json = DjangoJSONEncoder()
USD = Decimal("0.00000001")


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
        "input": run.input, "answer": run.answer, "overridden": run.overridden,
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
        "assigned_to": esc.assigned_to.get_username() if esc.assigned_to else None,
        "assigned_at": _iso(esc.assigned_at),
    }
