"""The team's daily budget, shared by every worker: reserve before a call, settle after.

The reservation is one conditional UPDATE — it only matches while
``spent + reserved + amount <= budget`` — so concurrent runs of a team can never overshoot
its budget, on Postgres (the UPDATE re-checks the row after taking its lock) and on SQLite
(writes are serialised).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.utils import timezone

from .models import Team, TeamDailySpend


class DjangoTeamBudget:
    def __init__(self, team_id: int) -> None:
        self.team_id = team_id
        self._row: tuple[object, int, Decimal | None] | None = None  # (day, pk, limit)

    def _today_row(self) -> tuple[int, Decimal | None]:
        """Today's row and the budget, looked up once per day per engine (one time slice),
        not twice per model call."""
        day = timezone.now().date()
        if self._row is not None and self._row[0] == day:
            return self._row[1], self._row[2]
        team = Team.objects.only("daily_budget_usd").get(pk=self.team_id)
        row = TeamDailySpend.objects.filter(team_id=self.team_id, day=day).only("pk").first()
        if row is None:
            try:
                with transaction.atomic():
                    row = TeamDailySpend.objects.create(team_id=self.team_id, day=day)
            except IntegrityError:  # another worker created it first
                row = TeamDailySpend.objects.get(team_id=self.team_id, day=day)
        self._row = (day, row.pk, team.daily_budget_usd)
        return row.pk, team.daily_budget_usd

    def reserve(self, amount_usd: Decimal) -> bool:
        pk, limit = self._today_row()
        rows = TeamDailySpend.objects.filter(pk=pk)
        if limit is not None:
            rows = rows.filter(reserved_usd__lte=Value(limit - amount_usd) - F("spent_usd"))
        return rows.update(reserved_usd=F("reserved_usd") + amount_usd) == 1

    def settle(self, reserved_usd: Decimal, actual_usd: Decimal) -> None:
        pk, _ = self._today_row()
        TeamDailySpend.objects.filter(pk=pk).update(
            reserved_usd=F("reserved_usd") - reserved_usd, spent_usd=F("spent_usd") + actual_usd
        )


def spent_today(team_id: int) -> Decimal:
    row = TeamDailySpend.objects.filter(team_id=team_id, day=timezone.now().date()).first()
    return row.spent_usd if row else Decimal("0")
