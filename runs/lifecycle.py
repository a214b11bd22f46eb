"""The one owner of a run's status: every start, pause, resume and ending goes through here.

Each change is a conditional UPDATE on the status it leaves (and, for a worker, on its
lease), so two writers can never both move a run: the loser matches no row. In the same
transaction this module alone writes what a change owes the world:

- the step that closes it (the engine's own step, an operator's decision, a final step),
  and the run's step counter;
- for a pause or an ending: the webhook outbox row (``runs.webhooks``), the audit event,
  the escalations it opens or closes, and — after commit — the hand-off of the team's
  freed running slot (``runs.capacity``);
- for an escalation opened: its round-robin assignee (``runs.assignment``) and the
  notification outbox rows (``runs.notifications``: new escalation, and a team budget used
  up); for a run that failed, the notification rows of the failure;
- the live event for the run and inbox pages (``runs.events``, published after commit);
- for a run the engine ends succeeded: whether it joins the review sample (``runs.labels``);
- when it takes the lease from a worker (an expired lease taken over, a cancel): the
  team-budget reservation that worker still held, given back once (``runs.budgets``).

The paths: ``start``/``release`` (a worker's lease), ``checkpoint`` (the engine after every
step: running on, paused for a human, or ended), ``resume`` (a decision), and the endings
from outside the engine: ``cancel``, ``abort``, ``expire`` (human-wait deadline) and
``crash`` (a bug in a worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from agentdesk.runtime.options import HumanTimeoutAction
from agentdesk.runtime.outcomes import Decision, Reason, RunStatus, StepKind
from agentdesk.runtime.ports import LeaseLost
from agentdesk.runtime.state import (
    EscalationRequest,
    HumanInput,
    PolicySnapshot,
    RunState,
    StepRecord,
)

from . import (
    assignment,
    audit,
    budgets,
    capacity,
    checkpoints,
    enqueue,
    fragments,
    labels,
    ledger,
    notifications,
    statements,
    webhooks,
)
from .claims import priority_for
from .errors import RunFinished, RunNotWaiting
from .events import LiveEvent, publish_on_commit
from .models import Escalation, PolicySnapshotRecord, Run, Step

LIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_HUMAN)


@dataclass(frozen=True)
class ClosingStep:
    """The trace row an ending from outside the engine adds (a decision, a final step)."""

    kind: StepKind
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str = ""


# -- a worker's lease ------------------------------------------------------------------


def start(run_id: int, owner: str) -> Run | None:
    """Take the run for ``owner`` (queued → running, or an expired lease taken over).

    None when it is not ours to advance: ended, waiting for a human, leased by a live
    worker, or its team has no free running slot (it stays queued until one frees up).

    The run row is read once, locked (``FOR UPDATE`` of the run's row only, not of its
    team's, agent's or snapshot's), with what the slice needs; nobody can change it
    between that read and the lease's UPDATE, so the read decides and the UPDATE needs
    no fence of its own.
    """
    now = timezone.now()
    with transaction.atomic():
        run = (Run.objects.select_related("agent", "team", "snapshot")
               .select_for_update(of=("self",)).filter(pk=run_id).first())
        if run is None or not _free(run, now) or not capacity.has_capacity(run):
            return None
        fields = {"lease_owner": owner, "status": RunStatus.RUNNING.value,
                  "lease_expires_at": now + timedelta(seconds=settings.RUN_LEASE_SECONDS)}
        statements.update_where(Run, {"id": run_id}, fields)  # compiled once: every slice
        for name, value in fields.items():
            setattr(run, name, value)
        if run.reserved_usd:  # an expired lease taken over: its dead holder's hold goes back
            budgets.release_held(run_id)
            run.reserved_usd, run.reserved_on = budgets.ZERO, None
    return run


def _free(run: Run, now: datetime) -> bool:
    """Queued, or running under nobody's lease or an expired one."""
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return False
    return not run.lease_owner or run.lease_expires_at is None or run.lease_expires_at < now


def release(run_id: int, owner: str) -> None:
    """Let go of a run that is still running (its time slice is over; it is re-enqueued)."""
    Run.objects.filter(pk=run_id, lease_owner=owner).update(lease_owner="",
                                                            lease_expires_at=None)


# -- the engine's checkpoint -----------------------------------------------------------


def checkpoint(run: Run, owner: str, state: RunState, step: StepRecord | None = None,
               escalation: EscalationRequest | None = None, *,
               transcript: dict[str, Any] | None = None,
               settlements: Sequence[budgets.Settlement] = (),
               hold_next: Decimal = budgets.ZERO,
               finished: ledger.Finished | None = None) -> date | None:
    """The engine's commit after a step, in one transaction fenced by the lease
    (``LeaseLost`` when the run is no longer ours): the run row (its state without the
    transcript, its usage), the step row with the transcript the step added
    (``runs.checkpoints``), the settlement of the step's model calls on the team's
    budget (``budgets.settle``), and, while the run goes on, ``hold_next`` held for its
    next model call (``budgets.hold_next``; returns the day it is held on, None if it was
    not), and the outcome of the tool call the step records (``finished``: a claimed call's
    even when the lease was lost, for whoever took the run over to replay; ``runs.ledger``).
    When the state says the run now waits for a human or has ended, the pause or ending is
    recorded too.

    The lease is extended only when less than three quarters of it is left: most
    checkpoints then change no indexed column, so Postgres updates the row in place (a HOT
    update, its old version pruned on the page) instead of adding to every index.

    On Postgres most checkpoints are one statement (``statements.update_where_then_insert``:
    the run, the step, a read-only call's row, one budget row), sent in autocommit
    (``_one_statement``); it also reads back whether anyone watches the run (``watchers``),
    for the step's live fragment.
    """
    now = timezone.now()
    status = RunStatus(state.status)
    fields: dict[str, Any] = {
        "state": checkpoints.row_state(state),
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
    }
    lease = timedelta(seconds=settings.RUN_LEASE_SECONDS)
    if run.lease_expires_at is None or run.lease_expires_at - now < lease * 0.75:
        fields["lease_expires_at"] = now + lease
    if settlements:
        fields.update(NOT_HELD)
    holding = bool(hold_next) and status == RunStatus.RUNNING
    if holding:  # the run's side of the next call's hold, taken back if the team refuses it
        fields["reserved_usd"], fields["reserved_on"] = hold_next, now.date()
    if status.is_terminal:
        fields["finished_at"] = now
    if status != RunStatus.RUNNING:
        fields["lease_owner"] = ""
        fields["lease_expires_at"] = None
    held_on = None
    settles = budgets.settle_statements(settlements, held=True)
    hold = budgets.hold_statement(run.team_id, hold_next, now.date()) if holding else None
    budget_writes = [*settles, *([hold] if hold is not None else [])]
    row = _step_row(run, step, transcript) if step is not None else None
    # the team's row in the run's statement when one UPDATE is all it needs (a row once)
    folded = budget_writes[0] if row is not None and len(budget_writes) == 1 else None
    held_there = folded is not None and folded is hold
    # a hold the team refuses is not the run's either: taken back in the same statement
    unless = NOT_HELD if held_there else None
    # a read-only call's row rides with the step's
    also = ([ledger.finished_row(finished)]
            if row is not None and finished is not None and not finished.claimed else [])
    with _transaction(alone=_one_statement(row, budget_writes, finished, escalation, status)):
        if finished is not None and finished.claimed:  # for whoever holds the run next
            ledger.finish(finished)
        fence = {"id": run.pk, "lease_owner": owner, "status": RunStatus.RUNNING.value}
        if row is None:  # compiled once: this runs on every step
            written = statements.update_where_returning(Run, fence, fields, WATCH)
        else:  # the step row (and the team's, the call's) only when the fence matched
            written = statements.update_where_then_insert(
                Run, fence, fields, row, then=folded, unless_then=unless, also=also,
                returning=WATCH)
        if written.matched:
            if finished is not None and not finished.claimed and not also:
                ledger.finish(finished)  # a read-only call's row, with no step to ride with
            for name, value in fields.items():
                setattr(run, name, value)
            run.watched_until = written.returned[0]  # read in the same statement
            held = written.then_rows if held_there else None
            for statement in budget_writes:  # the run row is locked: now the team's
                if statement is not folded:
                    rows = statements.run(statement)
                    held = rows if statement is hold else held
            if holding and held == 1:
                held_on = now.date()
            elif holding:  # it did not fit: the call reserves on its own
                if unless is None:  # (otherwise the statement took it back)
                    Run.objects.filter(pk=run.pk).update(**NOT_HELD)
                for name, value in NOT_HELD.items():
                    setattr(run, name, value)
            _record_pause_or_end(run, state, step, escalation, row, now)
    if not written.matched:
        budgets.settle(settlements, held=False)
        raise LeaseLost(f"run {run.pk} is no longer ours")
    return held_on


# What a checkpoint reads back from the run's row: whether anyone watches (``watchers``).
WATCH = ("watched_until",)
# A run that holds nothing on its team's budget (``Run.reserved_usd``, ``reserved_on``).
NOT_HELD: dict[str, Any] = {"reserved_usd": budgets.ZERO, "reserved_on": None}


def _one_statement(row: Step | None, budget_writes: Sequence[statements.Statement],
                   finished: ledger.Finished | None, escalation: EscalationRequest | None,
                   status: RunStatus) -> bool:
    """Is the checkpoint one statement on Postgres (the run, its step, a read-only tool
    call's row and at most one budget row)? Then it needs no transaction of its own: a
    statement is atomic, and BEGIN and COMMIT would be two more round trips on every
    step. Not when it pauses or ends the run (the escalation, the audit, the outbox rows)
    or finishes a claimed call (written before the fence: see ``checkpoint``)."""
    return (connection.vendor == "postgresql" and row is not None and escalation is None
            and status == RunStatus.RUNNING and len(budget_writes) <= 1
            and (finished is None or not finished.claimed))


def _transaction(*, alone: bool) -> AbstractContextManager[Any]:
    return nullcontext() if alone else transaction.atomic()


def _record_pause_or_end(run: Run, state: RunState, step: StepRecord | None,
                         escalation: EscalationRequest | None, row: Step | None,
                         now: datetime) -> None:
    """The rest of a checkpoint's transaction: the escalation it opens (its assignee, who
    hears of it), the pause or ending, the review sample, and the live events."""
    status = RunStatus(state.status)
    opened = _open_escalation(run, escalation, step, now) if escalation else None
    if opened is not None:  # whose it is, then who hears of it (it names the assignee)
        assignment.auto_assign(opened, now)
        notifications.escalation_opened(opened, run)
        if opened.reason == Reason.TEAM_BUDGET:
            notifications.team_budget_stopped(run)
    if status != RunStatus.RUNNING:
        _stopped(run, f"run.{status.value}", detail={"step": state.step_count - 1})
    if status == RunStatus.SUCCEEDED:  # the agent's own ending: maybe one to review
        labels.sample_for_review(run)
    publish_on_commit(
        lambda: fragments.run_progress(run, row)
        + (fragments.escalation_opened(opened) if opened is not None else [])
    )


def _open_escalation(run: Run, request: EscalationRequest, step: StepRecord | None,
                     now: datetime) -> Escalation:
    wait = run.policy.human_timeout_seconds
    return Escalation.objects.create(
        run=run, team_id=run.team_id, step_index=step.index if step else run.step_count,
        reason=request.reason.value, question=request.question,
        proposed_tool=request.proposed_tool, proposed_args=request.proposed_args,
        confidence=request.confidence, context=request.context,
        deadline_at=now + timedelta(seconds=wait) if wait else None,
        priority=priority_for(request.reason.value),
    )


def _step_row(run: Run, step: StepRecord, transcript: dict[str, Any] | None = None) -> Step:
    """The step's row, to be inserted by the checkpoint."""
    return Step(transcript=transcript,
        run=run, index=step.index, kind=step.kind.value, name=step.name[:100],
        tier=str(step.args.get("tier", "")) if step.kind == StepKind.MODEL else "",
        model=step.model, tokens_in=step.usage.tokens_in, tokens_out=step.usage.tokens_out,
        tokens_cached=step.usage.tokens_cached, tokens_reasoning=step.usage.tokens_reasoning,
        cost_usd=step.usage.cost_usd,
        latency_ms=step.latency_ms, confidence=step.confidence, args=step.args,
        result=step.result, error=step.error, attempts=step.attempts,
    )


# -- a human's decision ----------------------------------------------------------------


def resume(run: Run, human: HumanInput, *, decided: Escalation,
           policy: PolicySnapshot | None = None) -> None:
    """waiting_human → queued with the decision in the checkpoint (applied by the engine as
    its next step), and enqueue it after commit. ``policy`` replaces the run's snapshot
    (extend budget). A decision that overrides the agent's proposal marks the run
    ``overridden`` for good, so its success is not counted as the agent's own. Raises
    RunNotWaiting when the run stopped waiting meanwhile."""
    state = {**run.state, "human_input": human.model_dump(mode="json")}  # the rest as it is
    fields: dict[str, Any] = {"status": RunStatus.QUEUED, "reason": "", "updated_at":
                              timezone.now(), "state": state}
    if policy is not None:
        fields["snapshot"] = PolicySnapshotRecord.of(policy.model_dump(mode="json"))
    if overrides(human, decided):
        fields["overridden"] = True
    moved = Run.objects.filter(pk=run.pk, status=RunStatus.WAITING_HUMAN).update(**fields)
    if not moved:
        raise RunNotWaiting(f"Run {run.pk} is {run.status}; it is not waiting for a decision.")
    run.refresh_from_db()
    run.__dict__.pop("policy", None)  # the cached typed snapshot may just have changed
    enqueue.advance_run_on_commit(run.pk)
    publish_on_commit(lambda: fragments.escalation_closed(decided)
                      + fragments.run_progress(run, None))


def overrides(human: HumanInput, decided: Escalation) -> bool:
    """Did the operator put something else in place of what the agent proposed? Approving
    as proposed, extending a budget or answering the agent's own question does not."""
    proposed = bool(decided.proposed_tool)
    return (human.decision in (Decision.REJECT, Decision.TAKE_OVER)
            or (human.decision == Decision.APPROVE and human.args is not None)
            or (human.decision == Decision.REPLY and proposed))


# -- endings from outside the engine -----------------------------------------------------


def cancel(run_id: int, *, user=None, api_key_id: int | None = None) -> Run:
    """Abort a run that has not ended, whatever it is doing (``aborted_by_operator``).

    A running run's worker is fenced: its next checkpoint (``WHERE status = 'running'``)
    matches nothing, so it stops with LeaseLost. Raises RunFinished once it had ended.
    """
    name = audit.actor_name(user, api_key_id)
    run = _end(run_id, LIVE, RunStatus.ABORTED, Reason.ABORTED_BY_OPERATOR,
               [ClosingStep(StepKind.HUMAN, Decision.ABORT.value, {"operator": name})],
               action="run.cancelled", user=user, api_key_id=api_key_id)
    if run is None:
        status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        raise RunFinished(f"Run {run_id} is {status}; it can no longer be cancelled.")
    return run


def abort(run: Run, *, decided: Escalation, user=None, api_key_id: int | None = None) -> Run:
    """An operator's abort decision on a waiting run. Raises RunNotWaiting otherwise."""
    name = audit.actor_name(user, api_key_id)
    ended = _end(run.pk, [RunStatus.WAITING_HUMAN], RunStatus.ABORTED,
                 Reason.ABORTED_BY_OPERATOR,
                 [ClosingStep(StepKind.HUMAN, Decision.ABORT.value, {"operator": name})],
                 action="run.aborted", user=user, api_key_id=api_key_id, decided=[decided])
    if ended is None:
        raise RunNotWaiting(f"Run {run.pk} is {run.status}; it cannot be aborted now.")
    return ended


def expire(run: Run, *, expired: Escalation) -> Run | None:
    """No decision before the deadline: fail the run, or send the policy's fallback answer.
    None when the run had stopped waiting already."""
    policy = run.policy
    fallback = policy.human_timeout_action == HumanTimeoutAction.FALLBACK
    status = RunStatus.SUCCEEDED if fallback else RunStatus.FAILED
    answer = policy.fallback_answer if fallback else ""
    final = ClosingStep(StepKind.FINAL, status.value,
                        result={"answer": answer} if fallback else None,
                        error="human_timeout: no decision before the deadline")
    return _end(run.pk, [RunStatus.WAITING_HUMAN], status, Reason.HUMAN_TIMEOUT, [final],
                action="run.expired", answer=answer, decided=[expired])


def crash(run_id: int, owner: str, exc: BaseException) -> Run | None:
    """A bug in the engine or an agent: end the run ``failed/internal_error`` rather than
    leave it for the reaper forever. Only the lease holder may; None if it no longer is."""
    final = ClosingStep(StepKind.FINAL, RunStatus.FAILED.value,
                        error=f"internal error: {type(exc).__name__}: {exc}"[:2000])
    return _end(run_id, [RunStatus.RUNNING], RunStatus.FAILED, Reason.INTERNAL_ERROR, [final],
                action="run.crashed", fence=Q(lease_owner=owner))


def agent_missing(run_id: int, owner: str, slug: str) -> Run | None:
    """A queued run whose agent's code is no longer installed: end it
    ``failed/agent_not_installed`` with a final step naming the agent, before any step runs.
    Only the lease holder may; None if it no longer is."""
    final = ClosingStep(StepKind.FINAL, RunStatus.FAILED.value,
                        error=f"agent {slug!r} is not installed: add its package or its path "
                              "to AGENTDESK_AGENTS")
    return _end(run_id, [RunStatus.RUNNING], RunStatus.FAILED, Reason.AGENT_NOT_INSTALLED,
                [final], action="run.failed", fence=Q(lease_owner=owner))


def _end(
    run_id: int,
    leaving: Sequence[RunStatus],
    status: RunStatus,
    reason: Reason,
    steps: Sequence[ClosingStep],
    *,
    action: str,
    user=None,
    api_key_id: int | None = None,
    answer: str | None = None,
    fence: Q | None = None,
    decided: Sequence[Escalation] = (),
) -> Run | None:
    """The shared ending: one conditional UPDATE, then the trace, the escalations, the
    outbox, the audit and the live event. None when the UPDATE matched nothing."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": status, "reason": reason, "finished_at": now, "updated_at": now,
        "lease_owner": "", "lease_expires_at": None,
        "step_count": F("step_count") + len(steps),
    }
    if answer is not None:
        fields["answer"] = answer
    with transaction.atomic():
        moved = Run.objects.filter(fence or Q(), pk=run_id, status__in=list(leaving)) \
            .update(**fields)
        if not moved:
            return None
        budgets.release_held(run_id)  # a cancel takes the lease from a call in flight
        run = Run.objects.select_related("team", "agent").get(pk=run_id)
        first = run.step_count - len(steps)
        rows = [Step.objects.create(run=run, index=first + i, kind=s.kind, name=s.name,
                                    args=s.args, result=s.result, error=s.error)
                for i, s in enumerate(steps)]
        still_open = list(Escalation.objects.filter(run=run, status=Escalation.Status.OPEN))
        Escalation.objects.filter(pk__in=[e.pk for e in still_open]).update(
            status=Escalation.Status.CANCELLED, decided_at=now)
        for esc in still_open:
            esc.status, esc.decided_at = Escalation.Status.CANCELLED, now
        _stopped(run, action, user=user, api_key_id=api_key_id)
        closed = [*decided, *still_open]
        last = rows[-1] if rows else None

        def events() -> list[LiveEvent]:
            built = [event for esc in closed for event in fragments.escalation_closed(esc)]
            return built + fragments.run_progress(run, last)

        publish_on_commit(events)
    return run


def _stopped(run: Run, action: str, *, user=None, api_key_id: int | None = None,
             detail: dict[str, Any] | None = None) -> None:
    """What every pause and ending owes, inside its transaction: the webhook outbox row,
    the notification outbox rows of a failure, the audit event, and (after commit) the
    team's freed running slot to a queued run."""
    webhooks.record_status_change(run)
    if run.status == RunStatus.FAILED:
        notifications.run_failed(run)
    audit.record(team_id=run.team_id, action=action, target=run, actor=user,
                 api_key_id=api_key_id,
                 detail={"status": run.status, "reason": run.reason, **(detail or {})})
    team_id = run.team_id
    transaction.on_commit(lambda: capacity.start_queued_runs(team_id))
