"""The tool ledger: one row per tool execution, keyed ``run:step``, so none runs twice.

A call with a side effect is recorded as started in a commit of its own *before* the tool
runs — that commit is what lets a worker resuming after a crash know the call may have
happened. Its outcome needs no commit of its own: the engine commits the tool's step right
after the tool returns, and that checkpoint's transaction writes the outcome too
(``Finished``, written by ``lifecycle.checkpoint`` even when the lease was lost meanwhile,
so whoever took the run over can replay it). A crash between the tool's return and that
commit leaves the call started, as a crash before the outcome's own commit used to: its
outcome is then asked of a human.

A read-only call needs no claim: after a crash it simply runs again. Its row is inserted
with its outcome by its step's checkpoint, under the lease's fence (a worker that lost the
run writes nothing; the new holder runs the call again under the same key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from agentdesk.runtime.ports import LedgerEntry

from . import statements
from .models import ToolCall


@dataclass(frozen=True)
class Finished:
    """A call's outcome, for the checkpoint of its step to write."""

    key: str
    result: dict[str, Any] | None
    error: str
    unclaimed: ToolCall | None = None  # a read-only call's row, for its checkpoint to insert

    @property
    def claimed(self) -> bool:
        return self.unclaimed is None


def unclaimed(run_id: int, key: str, tool: str, args: dict[str, Any]) -> ToolCall:
    """A read-only call's row, not written yet: its step's checkpoint inserts it."""
    return ToolCall(run_id=run_id, idempotency_key=key, tool=tool, args=args)


def begin(run_id: int, key: str, tool: str, args: dict[str, Any]) -> LedgerEntry | None:
    """Record the call as started (committed before the tool runs); None when it is new, or
    the entry an earlier attempt left under ``key``.

    The INSERT is its own commit (autocommit: one round trip); only inside a caller's
    transaction does it need a savepoint, so that a key taken already leaves that
    transaction usable."""
    try:
        with statements.savepoint_if_nested():
            statements.insert(ToolCall(run_id=run_id, idempotency_key=key, tool=tool,
                                       args=args))
        return None
    except IntegrityError:
        call = ToolCall.objects.get(idempotency_key=key)
        return LedgerEntry(status=call.status, result=call.result, error=call.error)


def finish(outcome: Finished) -> None:
    """Write the call's outcome (the row of a read-only call with it); inside the
    checkpoint's transaction."""
    if outcome.unclaimed is not None:
        statements.insert(finished_row(outcome))
        return
    statements.update_where(
        ToolCall, {"idempotency_key": outcome.key},
        {"status": _status(outcome), "result": outcome.result, "error": outcome.error,
         "finished_at": timezone.now()})


def finished_row(outcome: Finished) -> ToolCall:
    """A read-only call's row with its outcome, not written yet: for the checkpoint's own
    statement to insert (``statements.update_where_then_insert``'s ``also``)."""
    row = outcome.unclaimed
    if row is None:
        raise TypeError(f"{outcome.key}: a claimed call's row is written already (finish)")
    row.status, row.result, row.error = _status(outcome), outcome.result, outcome.error
    row.started_at = row.finished_at = timezone.now()
    return row


def _status(outcome: Finished) -> str:
    return (ToolCall.Status.FAILED if outcome.error else ToolCall.Status.SUCCEEDED).value
