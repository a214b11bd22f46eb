"""The runtime's ports implemented on the ORM: the run store (checkpoints, through
``runs.lifecycle``) and the tool ledger (``runs.ledger``).

Every checkpoint is fenced by the run's lease: the UPDATE only matches while this worker
still owns the run and the run is still running, so a worker whose lease expired (or whose
run an operator aborted) stops without writing anything.
"""

from __future__ import annotations

from typing import Any

from agentdesk.runtime.outcomes import Phase, RunStatus
from agentdesk.runtime.ports import LedgerEntry
from agentdesk.runtime.state import EscalationRequest, RunState, StepRecord

from . import checkpoints, connections, ledger, lifecycle
from .budgets import ZERO, DjangoTeamBudget
from .models import Run, ToolCall


class DjangoRunStore:
    """The run store of one time slice: it knows how much of the transcript the step rows
    hold (``written``), and takes the slice's model-call settlements from its team budget,
    so each checkpoint writes the step, its transcript and its spend in one transaction —
    and the outcome of the tool call the step records (``runs.ledger``)."""

    def __init__(self, run: Run, lease_owner: str, written: checkpoints.Written | None = None,
                 team_budget: DjangoTeamBudget | None = None) -> None:
        self.run = run
        self.lease_owner = lease_owner
        self.written = written if written is not None else checkpoints.Written()
        self.team_budget = team_budget
        self._finished: ledger.Finished | None = None  # for the next checkpoint to write
        self._unclaimed: ToolCall | None = None  # a read-only call's row, not written yet

    def commit(
        self,
        state: RunState,
        step: StepRecord | None = None,
        escalation: EscalationRequest | None = None,
    ) -> None:
        budget = self.team_budget
        settlements = budget.take() if budget is not None else []
        transcript = self.written.take(state) if step is not None else None
        # the model is asked next: hold its budget in this transaction (``budgets``)
        hold = (budget.next_hold() if budget is not None and state.phase == Phase.REASON
                and state.status == RunStatus.RUNNING else ZERO)
        finished, self._finished = self._finished, None
        held_on = lifecycle.checkpoint(self.run, self.lease_owner, state, step, escalation,
                                       transcript=transcript, settlements=settlements,
                                       hold_next=hold, finished=finished)
        if held_on is not None and budget is not None:
            budget.prepaid(hold, held_on)

    def ledger_begin(self, key: str, tool: str, args: dict[str, Any], *,
                     side_effect: bool = True) -> LedgerEntry | None:
        """A side effect is claimed in a commit of its own before it runs; a read-only call
        is not (it may run again), and its row comes with its outcome (``runs.ledger``).

        The tool runs next, in a thread of its own and for up to its timeout: this thread
        holds no database connection meanwhile (``connections.give_back``), as while a model
        answers."""
        if not side_effect:
            self._unclaimed = ledger.unclaimed(self.run.pk, key, tool, args)
            connections.give_back()
            return None
        entry = ledger.begin(self.run.pk, key, tool, args)
        connections.give_back()
        return entry

    def ledger_finish(self, key: str, result: dict[str, Any] | None, error: str) -> None:
        """The outcome goes into the checkpoint the engine makes next, for the tool's step:
        one commit for both (``runs.ledger``)."""
        unclaimed, self._unclaimed = self._unclaimed, None
        if unclaimed is not None and unclaimed.idempotency_key != key:
            unclaimed = None
        self._finished = ledger.Finished(key, result, error, unclaimed=unclaimed)
