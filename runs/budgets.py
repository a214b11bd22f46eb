"""The team's daily budget, shared by every worker: reserve before a call, settle after.

The reservation is one conditional UPDATE — it only matches while
``spent + reserved + amount <= budget + extra`` — so concurrent runs of a team can never
overshoot its budget, on Postgres (the UPDATE re-checks the row after taking its lock) and
on SQLite (writes are serialised). ``extra`` is what team admins added for that day
(``extend_today``, after a ``team_budget`` escalation).

**Who holds a reservation.** The run does: the same transaction that adds the amount to the
team's row writes it on the run (``Run.reserved_usd``, ``reserved_on``), for the worker that
holds the run's lease. So a reservation outlives a worker killed mid-call attributably, and
is given back exactly once:

- the lease holder settles in the checkpoint of the call's step (``settle``, one UPDATE of
  the team's row in that transaction: no commit of its own). The checkpoint's UPDATE is
  fenced by the lease, so when it matches the hold is still this worker's: it clears the
  run's hold and gives the amount back. When the lease was lost meanwhile, only the real
  cost is counted — the provider billed it. Holds add up on the run (an agreement sample
  is a second call in the same step), and the checkpoint settles them all;
- whoever takes the lease away (the reaper, a worker taking over an expired lease, a
  cancel) calls ``release_held`` in that same transaction: it locks the run row, and gives
  back whatever the run still holds. The dead call's cost is unknown and its step was never
  recorded, so nothing is counted as spent: the team's spend stays the sum of its runs'
  recorded costs.

**The next call's hold in this step's checkpoint.** A checkpoint after which the run reasons
again (a tool's result is in, or the small model handed over to the large) also holds the
next call's budget, in the same transaction (``hold_next``): the amount is the largest
this time slice has reserved so far, with a quarter on top, since a prompt grows with each
step — before the slice's first call, what the agent's last first call reserved in this
process, so the retrieval step's checkpoint holds for the first call too. The model call
then finds its hold made (``DjangoTeamBudget.reserve`` uses it when
it covers the call's worst case) and needs no transaction of its own; the hold is settled
like any other. One the call did not use (a cached reply, or a call that needed more and
reserved on its own) is given back by the next checkpoint, with nothing counted as spent.
If it does not fit the team's budget, nothing is held, and the call reserves on its own as
before — and is refused the same way.

Both sides lock the run row first, then the team's row (no deadlock), and whichever comes
second finds the hold already cleared (Postgres re-reads the row after the lock, SQLite runs
them one after the other): a slow worker that settles after the reaper released its hold
only adds its cost, and a reaper after a settle finds nothing to give back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import DecimalField, Exists, ExpressionWrapper, F, Q, Subquery, Value
from django.utils import timezone

from agentdesk.runtime.outcomes import RunStatus
from agentdesk.runtime.ports import LeaseLost

from . import audit, permissions, statements
from .models import Escalation, Run, Team, TeamDailySpend

log = structlog.get_logger(__name__)
ZERO = Decimal("0")


class _OverBudget(Exception):
    """Internal: the team's row refused the amount; the run's side of the hold is undone."""


def _day_row(team_id: int, day: date) -> int:
    """The pk of the team's row for ``day``, created on first use."""
    pk = TeamDailySpend.objects.filter(team_id=team_id, day=day).values_list("pk", flat=True) \
        .first()
    if pk is not None:
        return pk
    try:
        with transaction.atomic():
            return TeamDailySpend.objects.create(team_id=team_id, day=day).pk
    except IntegrityError:  # another worker created it first
        return TeamDailySpend.objects.get(team_id=team_id, day=day).pk


# The next call's hold (``hold_next``): the largest reserved in the slice, plus a quarter.
NEXT_HOLD_HEADROOM = Decimal("1.25")
# Before a slice's first call, what the agent's last first call reserved in this process
# (its prompt is the instructions, the passages and the task: much the same run to run).
_first_calls: dict[int, Decimal] = {}


class DjangoTeamBudget:
    """The runtime's ``TeamBudget`` for one time slice of one run, by its lease holder."""

    def __init__(self, team_id: int, run_id: int, owner: str,
                 agent_id: int | None = None) -> None:
        self.team_id = team_id
        self.run_id = run_id
        self.owner = owner
        self.agent_id = agent_id  # whose first calls ``next_hold`` learns from
        self._held_on: date | None = None  # the day of the reservation out
        self._holding = ZERO  # the amount of the reservation out
        self._row_on: date | None = None  # the day whose row is known to exist
        self._settlements: list[Settlement] = []  # calls made since the last checkpoint
        self._largest = ZERO  # the largest amount reserved in this slice
        self._prepaid = ZERO  # held by the last checkpoint for the next call (``hold_next``)
        self._prepaid_on: date | None = None

    def reserve(self, amount_usd: Decimal) -> bool:
        """Hold ``amount_usd`` on the team's row and on the run, in one transaction. Raises
        LeaseLost when the run is no longer ours (nothing is held then).

        The team's budget is read by the UPDATE itself (a subquery), so a budget an admin
        just lowered counts at once; the day's row is made sure of once per engine (one
        time slice) and day. A hold the last checkpoint made for this call (``prepaid``)
        is used when it covers ``amount``: no statement at all."""
        if not self._largest and self.agent_id is not None:
            if len(_first_calls) > 10_000:
                _first_calls.clear()
            _first_calls[self.agent_id] = amount_usd
        self._largest = max(self._largest, amount_usd)
        if self._prepaid and self._prepaid >= amount_usd:
            self._holding, self._held_on = self._prepaid, self._prepaid_on
            self._prepaid, self._prepaid_on = ZERO, None
            return True
        day = timezone.now().date()
        if self._row_on != day:
            _day_row(self.team_id, day)
            self._row_on = day
        try:
            with transaction.atomic():
                if not _hold_on_run(self.run_id, self.owner, amount_usd, day):
                    raise LeaseLost(f"run {self.run_id} is no longer ours")
                if not hold_next(self.team_id, amount_usd, day):
                    raise _OverBudget
        except _OverBudget:
            return False
        self._held_on, self._holding = day, amount_usd
        return True

    def settle(self, reserved_usd: Decimal, actual_usd: Decimal) -> None:
        """Note the call's real cost; the step's checkpoint settles it (``take``). What is
        given back is what was held for the call (a checkpoint's hold may be more than
        ``reserved_usd``, the call's worst case)."""
        day = self._held_on or timezone.now().date()
        held = self._holding if self._held_on is not None else reserved_usd
        self._settlements.append(Settlement(self.team_id, day, held, actual_usd))
        self._held_on, self._holding = None, ZERO

    def take(self) -> list[Settlement]:
        """The calls settled since the last checkpoint, for the next one to write, and a
        hold that checkpoint made which no call used (given back, nothing spent)."""
        taken, self._settlements = self._settlements, []
        if self._prepaid:
            taken.append(Settlement(self.team_id, self._prepaid_on, self._prepaid, ZERO))
            self._prepaid, self._prepaid_on = ZERO, None
        return taken

    def next_hold(self) -> Decimal:
        """What a checkpoint before another model call holds for it: the largest amount
        reserved in this slice, plus a quarter. Before the slice's first call, what the
        agent's last first call reserved, plus a quarter (nothing when this process has
        not seen one): the retrieval step's checkpoint then holds for the first call, which
        needs no transaction of its own either."""
        largest = self._largest or _first_calls.get(self.agent_id or 0, ZERO)
        return (largest * NEXT_HOLD_HEADROOM).quantize(Decimal("0.00000001"))

    def prepaid(self, amount_usd: Decimal, day: date) -> None:
        """The checkpoint held ``amount_usd`` on ``day`` for the next call (``hold_next``)."""
        self._prepaid, self._prepaid_on = amount_usd, day


def _today(team_id: int, day: date):
    return TeamDailySpend.objects.filter(team_id=team_id, day=day)


def _fits(team_id: int, amount_usd: Decimal) -> Q:
    """``spent + reserved + amount <= budget + extra``, the budget read from the team's row
    in the same statement; no budget (NULL) is no limit."""
    budget = Team.objects.filter(pk=team_id).values("daily_budget_usd")
    room = ExpressionWrapper(Subquery(budget) - Value(amount_usd) + F("extra_usd")
                             - F("spent_usd"), output_field=DecimalField())
    unlimited = Exists(Team.objects.filter(pk=team_id, daily_budget_usd__isnull=True))
    return Q(unlimited) | Q(reserved_usd__lte=room)


@dataclass(frozen=True)
class Settlement:
    """A model call's hold and its real cost, written by the checkpoint of its step."""

    team_id: int
    day: date  # the TeamDailySpend row the hold is on
    reserved_usd: Decimal
    actual_usd: Decimal


def settle(settlements: Sequence[Settlement], *, held: bool) -> None:
    """Count the calls' costs on the team's row and, when ``held`` (the checkpoint's fenced
    UPDATE matched: the run's hold is still this worker's), give their holds back. Call it
    in the transaction that clears the run's hold (``lifecycle.checkpoint``, which may run
    ``settle_statements`` in its own statement) — or, when the lease was lost, on its own
    with ``held=False``: whoever took the lease gave the holds back already, and the
    provider billed the calls all the same."""
    for statement in settle_statements(settlements, held=held):
        statements.run(statement)
    if not held and any(s.reserved_usd > 0 for s in settlements):
        log.warning("reservation released while the call ran; its cost counted",
                    reserved_usd=str(sum(s.reserved_usd for s in settlements)),
                    actual_usd=str(sum(s.actual_usd for s in settlements)))


def settle_statements(settlements: Sequence[Settlement], *,
                      held: bool) -> list[statements.Statement]:
    """``settle``'s UPDATEs, compiled, not run: one per team row (day) the calls were held
    on — count ``actual`` as spent and give the holds back (only when ``held``: else the
    hold is not ours to give back). Every checkpoint after a call runs one."""
    by_row: dict[tuple[int, date], tuple[Decimal, Decimal]] = {}
    for s in settlements:
        reserved, actual = by_row.get((s.team_id, s.day), (ZERO, ZERO))
        by_row[s.team_id, s.day] = (reserved + s.reserved_usd, actual + s.actual_usd)
    return [_settle_row(team_id, day, reserved if held else None, actual)
            for (team_id, day), (reserved, actual) in by_row.items()]


def _settle_row(team_id: int, day: date, reserved: Decimal | None,
                actual: Decimal) -> statements.Statement:
    change = {"spent_usd": F("spent_usd") + actual}
    params: list[Any] = [actual]
    if reserved is not None:
        change["reserved_usd"] = F("reserved_usd") - reserved
        params.append(reserved)
    params += [statements.db_value(TeamDailySpend, "day", day), team_id]
    return statements.compile_update(("settle", reserved is not None), params,
                                     lambda: (_today(team_id, day), change))


def hold_next(team_id: int, amount_usd: Decimal, day: date) -> bool:
    """Hold ``amount_usd`` on the team's row for ``day``, for a run's next model call. Call
    it in the checkpoint's transaction whose fenced UPDATE wrote the same hold on the run
    row (so the lease is ours, and the run row is locked before the team's); when this
    returns False (it does not fit, or the day's row is not there yet) the checkpoint
    takes the run's side back, and the call reserves on its own. The statement is compiled
    once (``runs.statements``): a reservation of its own makes the same one."""
    return statements.run(hold_statement(team_id, amount_usd, day)) == 1


def hold_statement(team_id: int, amount_usd: Decimal, day: date) -> statements.Statement:
    """``hold_next``'s conditional UPDATE, compiled, not run: it changes the team's row
    only when ``amount_usd`` fits (one row changed: held)."""
    day_value = statements.db_value(TeamDailySpend, "day", day)
    return statements.compile_update(
        "hold_on_team", [amount_usd, day_value, team_id, 1, team_id, team_id, amount_usd],
        lambda: (_today(team_id, day).filter(_fits(team_id, amount_usd)),
                 {"reserved_usd": F("reserved_usd") + amount_usd}))


def _hold_on_run(run_id: int, owner: str, amount_usd: Decimal, day: date) -> bool:
    """The run's side of a reservation, fenced by the lease: False when it is not ours."""
    return statements.update(
        "hold_on_run",
        [amount_usd, statements.db_value(Run, "reserved_on", day), owner, run_id,
         RunStatus.RUNNING.value],
        lambda: (Run.objects.filter(pk=run_id, lease_owner=owner, status=RunStatus.RUNNING),
                 {"reserved_usd": F("reserved_usd") + amount_usd, "reserved_on": day})) == 1


def release_held(run_id: int) -> Decimal:
    """Give back the reservation a run holds (its worker died mid-call, or was fenced out).

    Call it in the transaction that takes the run's lease away. Exactly once: the run row is
    locked, and what is given back is cleared in the same transaction. Returns the amount.
    """
    with transaction.atomic():
        held = (Run.objects.select_for_update().filter(pk=run_id, reserved_usd__gt=0)
                .values_list("team_id", "reserved_on", "reserved_usd").first())
        if held is None:
            return ZERO
        team_id, day, amount = held
        Run.objects.filter(pk=run_id).update(reserved_usd=ZERO, reserved_on=None)
        TeamDailySpend.objects.filter(team_id=team_id, day=day).update(
            reserved_usd=F("reserved_usd") - amount)
    log.info("released a dead call's reservation", run_id=run_id, reserved_usd=str(amount))
    return amount


def spent_today(team_id: int) -> Decimal:
    row = TeamDailySpend.objects.filter(team_id=team_id, day=timezone.now().date()).first()
    return row.spent_usd if row else Decimal("0")


# -- extending the day's budget ------------------------------------------------------------


@dataclass(frozen=True)
class TeamDay:
    """A team's budget for one day, as the escalation page shows it."""

    day: date
    budget_usd: Decimal | None  # the team's daily budget; None: unlimited
    extra_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal

    @property
    def total_usd(self) -> Decimal | None:
        return None if self.budget_usd is None else self.budget_usd + self.extra_usd


def today(team: Team) -> TeamDay:
    day = timezone.now().date()
    row = TeamDailySpend.objects.filter(team=team, day=day).first()
    return TeamDay(day=day, budget_usd=team.daily_budget_usd,
                   extra_usd=row.extra_usd if row else ZERO,
                   spent_usd=row.spent_usd if row else ZERO,
                   reserved_usd=row.reserved_usd if row else ZERO)


def may_extend(user, team_id: int) -> bool:
    """Raising a team's budget is a team admin's power (or a superuser's), not an
    operator's; an API key carries no role, so it never may."""
    return user is not None and permissions.can(user, permissions.Action.EXTEND_BUDGET, team_id)


def extend_today(*, esc: Escalation, amount_usd: Decimal, user) -> TeamDailySpend:
    """Add ``amount_usd`` to the team's budget for today (UTC, as the spend is counted), and
    audit who, how much and which day. Call inside the decision's transaction; the caller
    checked ``may_extend``."""
    day = timezone.now().date()
    pk = _day_row(esc.team_id, day)
    TeamDailySpend.objects.filter(pk=pk).update(extra_usd=F("extra_usd") + amount_usd)
    row = TeamDailySpend.objects.select_related("team").get(pk=pk)
    budget = row.team.daily_budget_usd
    audit.record(
        team_id=esc.team_id, action="team.budget_extended", target=row.team, actor=user,
        detail={"amount_usd": str(amount_usd), "day": day.isoformat(),
                "extra_usd": str(row.extra_usd),
                "daily_budget_usd": None if budget is None else str(budget),
                "escalation_id": esc.pk, "run_id": esc.run_id},
    )
    return row
