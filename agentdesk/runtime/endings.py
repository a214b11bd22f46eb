"""How the engine writes its trace and ends a time slice.

``Endings`` is the base of ``loop.Engine``: every step goes through ``_commit`` (the step
row, the state and the usage in one commit through the run store, then ``on_step``), and
the helpers that end a slice (``_finish``, ``_escalate``, ``_bound``) are typed
``NoReturn``: they commit, then raise ``RunEnded``, which ``Engine.advance`` catches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from .options import OnBound
from .outcomes import Phase, Reason, RunStatus, StepKind
from .ports import RunStore
from .proposals import without_confidence
from .state import EscalationRequest, PolicySnapshot, RunState, StepRecord, ToolCallProposal


class RunEnded(Exception):
    """Internal: the run reached a terminal or waiting state inside a helper.

    ``_escalate`` and ``_finish`` raise it after their commit (hence ``NoReturn``), so a
    helper deep in a step can end the run without every caller checking a return value.
    """


class Endings:
    """The slice-ending helpers and the step bookkeeping; ``Engine`` sets the attributes."""

    policy: PolicySnapshot
    store: RunStore
    clock: Callable[[], float]
    on_step: Callable[[StepRecord], None] | None
    _mark: float

    # -- endings -----------------------------------------------------------------------

    def _bound(self, state: RunState, reason: Reason, call: ToolCallProposal | None) -> NoReturn:
        """A bound was hit: fail with its reason, or let a human extend it, as policy says."""
        if self.policy.on_bound == OnBound.ESCALATE:
            question = (
                "The run reached its team budget: the team's budget for today is used up. "
                "A team admin can add to it to continue from here; or abort."
                if reason == Reason.TEAM_BUDGET else
                f"The run reached its {reason.value.replace('_', ' ')}. Extend the budget "
                "to continue from here, or abort."
            )
            self._escalate(state, reason, question, call)
        else:
            self._finish(state, RunStatus.FAILED, reason, error=f"{reason.value} reached")

    def _escalate(
        self,
        state: RunState,
        reason: Reason,
        question: str,
        call: ToolCallProposal | None,
        confidence: float | None = None,
    ) -> NoReturn:
        """Pause the run for a human: commit the escalation with the step, then end the slice."""
        state.status = RunStatus.WAITING_HUMAN
        state.reason = reason
        state.phase = Phase.AWAIT_HUMAN
        state.pending_call = call
        step = self._step(state, StepKind.ESCALATION, reason.value, args={"question": question})
        step.confidence = call.confidence if call is not None else confidence
        escalation = EscalationRequest(
            reason=reason,
            question=question,
            proposed_tool=call.tool if call is not None else "",
            proposed_args=without_confidence(call) if call is not None else {},
            confidence=step.confidence,
            context=state.context,
        )
        self._commit(state, step, escalation)
        raise RunEnded

    def _finish(
        self,
        state: RunState,
        status: RunStatus,
        reason: Reason,
        *,
        answer: str | None = None,
        error: str = "",
    ) -> NoReturn:
        """End the run in ``status``: commit the final step, then end the slice."""
        state.status = status
        state.reason = reason
        state.answer = answer
        state.phase = Phase.DONE
        state.pending_call = None
        step = self._step(state, StepKind.FINAL, status.value)
        step.result = {"answer": answer} if answer is not None else None
        step.error = error
        self._commit(state, step)
        raise RunEnded

    # -- bookkeeping -------------------------------------------------------------------

    @staticmethod
    def _step(
        state: RunState, kind: StepKind, name: str, *, args: dict[str, Any] | None = None
    ) -> StepRecord:
        return StepRecord(index=state.step_count, kind=kind, name=name, args=args or {})

    def _commit(
        self, state: RunState, step: StepRecord, escalation: EscalationRequest | None = None
    ) -> None:
        now = self.clock()
        state.active_seconds += now - self._mark
        self._mark = now
        state.step_count = step.index + 1
        if step.kind == StepKind.MODEL:
            state.usage.add(step.usage)
        self.store.commit(state, step, escalation)
        if self.on_step is not None:
            self.on_step(step)
