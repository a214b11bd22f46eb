"""The runtime's ports implemented on the ORM: the run store (checkpoints, through
``runs.lifecycle``) and the tool ledger.

Every checkpoint is fenced by the run's lease: the UPDATE only matches while this worker
still owns the run and the run is still running, so a worker whose lease expired (or whose
run an operator aborted) stops without writing anything.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agentdesk.runtime.ports import LedgerEntry
from agentdesk.runtime.state import EscalationRequest, RunState, StepRecord

from . import lifecycle
from .models import Run, ToolCall


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
        lifecycle.checkpoint(self.run, self.lease_owner, state, step, escalation)

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

