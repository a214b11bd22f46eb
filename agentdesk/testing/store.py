"""In-memory doubles of the runtime's other ports: the run store and its tool ledger, a
clock, a team budget and a response cache.

They implement the same protocols as the production adapters (``runs/adapters.py``), so
the engine under test cannot tell them apart, and they keep what the engine did (steps,
checkpoints, escalations, ledger rows) for the assertions. ``InMemoryStore`` can also
simulate a worker dying at a chosen write, to test what a resumed run does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from agentdesk.runtime.ports import LedgerEntry
from agentdesk.runtime.state import EscalationRequest, RunState, StepRecord

# -- store ---------------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The worker died here. BaseException, so no ``except Exception`` can swallow it."""


class InMemoryStore:
    """``RunStore`` keeping everything in lists and dicts.

    ``crash_after_commit=N`` dies right after the Nth commit (1-based) is saved;
    ``crash_after_ledger_begin`` / ``crash_after_ledger_finish`` die right after the
    ledger write for that tool name. Each crash fires once.
    """

    def __init__(
        self,
        *,
        crash_after_commit: int | None = None,
        crash_after_ledger_begin: str | None = None,
        crash_after_ledger_finish: str | None = None,
        after_commit: Callable[[InMemoryStore], None] | None = None,
    ) -> None:
        self.steps: list[StepRecord] = []
        self.snapshots: list[dict[str, Any]] = []
        self.escalations: list[EscalationRequest] = []
        self.ledger: dict[str, dict[str, Any]] = {}
        self.commits = 0
        self.crash_after_commit = crash_after_commit
        self.crash_after_ledger_begin = crash_after_ledger_begin
        self.crash_after_ledger_finish = crash_after_ledger_finish
        self.after_commit = after_commit

    def commit(
        self,
        state: RunState,
        step: StepRecord | None = None,
        escalation: EscalationRequest | None = None,
    ) -> None:
        if step is not None:
            self.steps.append(step.model_copy(deep=True))
        if escalation is not None:
            self.escalations.append(escalation.model_copy(deep=True))
        self.snapshots.append(state.model_dump(mode="json"))
        self.commits += 1
        if self.after_commit is not None:
            self.after_commit(self)
        if self.crash_after_commit == self.commits:
            self.crash_after_commit = None
            raise SimulatedCrash(f"after commit {self.commits}")

    def ledger_begin(self, key: str, tool: str, args: dict[str, Any], *,
                     side_effect: bool = True) -> LedgerEntry | None:
        # every call is claimed, read-only ones too: the strictest store the port allows
        if key in self.ledger:
            row = self.ledger[key]
            return LedgerEntry(status=row["status"], result=row["result"], error=row["error"])
        self.ledger[key] = {
            "tool": tool,
            "args": copy.deepcopy(args),
            "status": "started",
            "result": None,
            "error": "",
        }
        if self.crash_after_ledger_begin == tool:
            self.crash_after_ledger_begin = None
            raise SimulatedCrash(f"after ledger_begin of {tool}")
        return None

    def ledger_finish(self, key: str, result: dict[str, Any] | None, error: str) -> None:
        row = self.ledger[key]
        row.update(
            status="failed" if error else "succeeded", result=copy.deepcopy(result), error=error
        )
        if self.crash_after_ledger_finish == row["tool"]:
            self.crash_after_ledger_finish = None
            raise SimulatedCrash(f"after ledger_finish of {row['tool']}")

    # -- what a test asserts on

    def last_checkpoint(self) -> RunState:
        """The run as a fresh worker would load it: the last committed snapshot."""
        return RunState.model_validate(self.snapshots[-1])

    def kinds(self) -> list[str]:
        return [str(s.kind) for s in self.steps]

    def steps_of(self, kind: str) -> list[StepRecord]:
        return [s for s in self.steps if s.kind == kind]


# -- clock ---------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- team budget and response cache --------------------------------------------------------


class InMemoryTeamBudget:
    """``TeamBudget`` over one Decimal limit; records every reserve and settle, in order."""

    def __init__(self, limit_usd: Decimal | str = "10") -> None:
        self.limit = Decimal(limit_usd)
        self.spent = Decimal("0")
        self.held = Decimal("0")
        self.events: list[tuple[str, Decimal] | tuple[str, Decimal, Decimal]] = []

    def reserve(self, amount_usd: Decimal) -> bool:
        if self.spent + self.held + amount_usd > self.limit:
            self.events.append(("refused", amount_usd))
            return False
        self.held += amount_usd
        self.events.append(("reserve", amount_usd))
        return True

    def settle(self, reserved_usd: Decimal, actual_usd: Decimal) -> None:
        self.held -= reserved_usd
        self.spent += actual_usd
        self.events.append(("settle", reserved_usd, actual_usd))


class DictResponseCache:
    """``ResponseCache`` in a dict; entries expire on an injected clock."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock or (lambda: 0.0)
        self.entries: dict[str, tuple[dict[str, Any], float]] = {}
        self.gets: list[str] = []
        self.sets: list[tuple[str, int]] = []

    def get(self, key: str) -> dict[str, Any] | None:
        self.gets.append(key)
        entry = self.entries.get(key)
        if entry is None or self.clock() >= entry[1]:
            return None
        return copy.deepcopy(entry[0])

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        self.sets.append((key, ttl_seconds))
        self.entries[key] = (copy.deepcopy(value), self.clock() + ttl_seconds)
