"""The runtime's ports implemented on the ORM: checkpoints, the tool ledger, live events.

Every commit is fenced by the run's lease: the UPDATE only matches while this worker still
owns the run and the run is still running, so a worker whose lease expired (or whose run an
operator aborted) stops without writing anything.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agentdesk.runtime.outcomes import RunStatus
from agentdesk.runtime.ports import LeaseLost, LedgerEntry
from agentdesk.runtime.state import EscalationRequest, RunState, StepRecord

from . import fragments, webhooks
from .claims import priority_for
from .events import publish_on_commit
from .models import Escalation, Run, Step, ToolCall


class DjangoRunStore:
    def __init__(self, run: Run, lease_owner: str) -> None:
        self.run = run
        self.lease_owner = lease_owner

    def commit(
        self,
        state: RunState,
        step: StepRecord | None = None,
        escalation: EscalationRequest | None = None,
    ) -> None:
        now = timezone.now()
        status = RunStatus(state.status)
        fields: dict[str, Any] = {
            "state": state.model_dump(mode="json"),
            "status": status.value,
            "reason": state.reason.value,
            "answer": state.answer or "",
            "step_count": state.step_count,
            "tokens_in": state.usage.tokens_in,
            "tokens_out": state.usage.tokens_out,
            "tokens_cached": state.usage.tokens_cached,
            "tokens_reasoning": state.usage.tokens_reasoning,
            "cost_usd": state.usage.cost_usd,
            "active_seconds": state.active_seconds,
            "updated_at": now,
            "lease_expires_at": now + timedelta(seconds=settings.RUN_LEASE_SECONDS),
        }
        if status.is_terminal:
            fields["finished_at"] = now
        if status != RunStatus.RUNNING:
            fields["lease_owner"] = ""
            fields["lease_expires_at"] = None
        with transaction.atomic():
            updated = Run.objects.filter(
                pk=self.run.pk, lease_owner=self.lease_owner, status=RunStatus.RUNNING
            ).update(**fields)
            if not updated:
                raise LeaseLost(f"run {self.run.pk} is no longer ours")
            for name, value in fields.items():
                setattr(self.run, name, value)
            row = _save_step(self.run, step) if step is not None else None
            esc = None
            if escalation is not None:
                esc = Escalation.objects.create(
                    run=self.run, team_id=self.run.team_id,
                    step_index=step.index if step else state.step_count,
                    reason=escalation.reason.value, question=escalation.question,
                    proposed_tool=escalation.proposed_tool,
                    proposed_args=escalation.proposed_args,
                    confidence=escalation.confidence, context=escalation.context,
                    deadline_at=self._deadline(now),
                    priority=priority_for(escalation.reason.value),
                )
            webhooks.record_status_change(self.run)  # queues run.<status> events, if any
            run = self.run
            publish_on_commit(
                lambda: fragments.run_progress(run, row)
                + (fragments.escalation_opened(esc) if esc is not None else [])
            )

    def _deadline(self, now):
        seconds = (self.run.policy_snapshot or {}).get("human_timeout_seconds")
        return now + timedelta(seconds=seconds) if seconds else None

    def ledger_begin(self, key: str, tool: str, args: dict[str, Any]) -> LedgerEntry | None:
        try:
            with transaction.atomic():
                ToolCall.objects.create(run_id=self.run.pk, idempotency_key=key, tool=tool,
                                        args=args)
            return None
        except IntegrityError:
            call = ToolCall.objects.get(idempotency_key=key)
            return LedgerEntry(status=call.status, result=call.result, error=call.error)

    def ledger_finish(self, key: str, result: dict[str, Any] | None, error: str) -> None:
        status = ToolCall.Status.FAILED if error else ToolCall.Status.SUCCEEDED
        ToolCall.objects.filter(idempotency_key=key).update(
            status=status, result=result, error=error, finished_at=timezone.now()
        )


def _save_step(run: Run, step: StepRecord) -> Step:
    return Step.objects.create(
        run=run, index=step.index, kind=step.kind.value, name=step.name[:100],
        tier=str(step.args.get("tier", "")) if step.kind == "model" else "",
        model=step.model, tokens_in=step.usage.tokens_in, tokens_out=step.usage.tokens_out,
        tokens_cached=step.usage.tokens_cached, tokens_reasoning=step.usage.tokens_reasoning,
        cost_usd=step.usage.cost_usd,
        latency_ms=step.latency_ms, confidence=step.confidence, args=step.args,
        result=step.result, error=step.error, attempts=step.attempts,
    )
