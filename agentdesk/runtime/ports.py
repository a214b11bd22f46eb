"""The interfaces the runtime needs from the outside world (implemented in runs/adapters.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from .state import EscalationRequest, RunState, StepRecord


class LeaseLost(Exception):
    """Another worker (or an operator's abort) owns the run now: stop without writing."""


@dataclass(frozen=True)
class LedgerEntry:
    """A tool execution already known to the ledger under an idempotency key."""

    status: str  # "started" | "succeeded" | "failed"
    result: dict[str, Any] | None
    error: str


class RunStore(Protocol):
    def commit(
        self,
        state: RunState,
        step: StepRecord | None = None,
        escalation: EscalationRequest | None = None,
    ) -> None:
        """Atomically save the step, the run's state and usage, and an escalation if any."""

    def ledger_begin(self, key: str, tool: str, args: dict[str, Any], *,
                     side_effect: bool = True) -> LedgerEntry | None:
        """Claim ``key`` for a tool execution; return the earlier entry if it exists. A
        read-only call (``side_effect=False``) may run again after a crash, so a store may
        claim nothing for it and record it with its outcome instead (return None)."""

    def ledger_finish(self, key: str, result: dict[str, Any] | None, error: str) -> None:
        """Record the outcome of the execution claimed under ``key``: durable no later than
        the next ``commit`` (which the engine makes at once, for the tool's step), so a store
        may write both in one transaction. ``ledger_begin`` must be durable on return."""


class TeamBudget(Protocol):
    """A budget shared by all of a team's runs on all workers (reserve, then settle)."""

    def reserve(self, amount_usd: Decimal) -> bool:
        """Hold ``amount_usd`` of today's budget for the run's call; False when that would
        overshoot it. May raise ``LeaseLost``: the run is no longer ours to spend for."""

    def settle(self, reserved_usd: Decimal, actual_usd: Decimal) -> None:
        """Replace a reservation by what the call really cost. Idempotent against a
        release: if the reservation was given back meanwhile (the worker was presumed dead),
        only the cost is counted."""


class ResponseCache(Protocol):
    """Replies to identical deterministic requests, kept for a while. Keys carry the
    policy's version (``model_calls.policy_version``); an implementation shared by several
    teams must scope them to the run's team (``runs.response_cache`` does)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None: ...
