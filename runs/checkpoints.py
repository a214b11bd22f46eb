"""A run's checkpoint in the database: what changes lives on the run row, the transcript on
its steps.

``RunState`` holds the whole conversation (``messages``) and the retrieved passages
(``context``), and both only ever grow. Written to the run row at every step, they made
each checkpoint rewrite everything the run had said so far: 7.7 KB of every step's 9 KB on
Postgres, where an UPDATE leaves the old row version behind (``make bench``, storage).
So the run row's ``state`` holds the rest of ``RunState`` (a few hundred bytes, the same at
step 5 as at step 50), and each step row carries the part of the transcript its step added
(``Step.transcript``: ``{"messages": [...], "context": [...]}``, either key only when it
changed). The step rows are the history; a worker that takes the run reads them back in
order (one query per time slice, not per step).

A checkpoint written before this (``messages`` still in ``run.state``) loads as it is; the
first step committed after it carries the whole transcript so far, and from then on the
run is in this form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentdesk.runtime.state import RunState

from .models import Run, Step

TRANSCRIPT = frozenset({"messages", "context"})


def row_state(state: RunState) -> dict[str, Any]:
    """What the run row keeps of ``state``: everything but the transcript."""
    return state.model_dump(mode="json", exclude=set(TRANSCRIPT))


@dataclass
class Written:
    """How much of the transcript the step rows hold already (for one time slice)."""

    messages: int = 0
    context: list[dict[str, Any]] = field(default_factory=list)

    def take(self, state: RunState) -> dict[str, Any] | None:
        """The transcript a step adds to what is written: the new messages, and the
        context when it changed. None when there is nothing new. Call it only for the step
        that is about to be committed: what it returns counts as written."""
        if len(state.messages) < self.messages:
            raise ValueError("a run's messages are append-only; some were removed")
        added: dict[str, Any] = {}
        if len(state.messages) > self.messages:
            added["messages"] = state.messages[self.messages:]
        if state.context != self.context:
            added["context"] = state.context
        self.messages, self.context = len(state.messages), state.context
        return added or None


def load(run: Run) -> tuple[RunState, Written]:
    """The run's state as of its last checkpoint, transcript included, and what of it the
    step rows hold."""
    data = dict(run.state)
    if "messages" in data:  # written before the transcript moved to the steps
        return RunState.model_validate(data), Written()
    messages: list[dict[str, Any]] = []
    context: list[dict[str, Any]] = []
    parts = (Step.objects.filter(run_id=run.pk, transcript__isnull=False)
             .order_by("index").values_list("transcript", flat=True))
    for part in parts:
        messages += part.get("messages", [])
        context = part.get("context", context)
    state = RunState.model_validate({**data, "messages": messages, "context": context})
    return state, Written(messages=len(messages), context=context)
