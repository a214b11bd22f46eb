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
order (one query per time slice, not per step). The retrieved passages are kept once, in
the context: a system message that ends with them (``knowledge_block``) is stored without
that ending, marked ``"knowledge": true``, and gets it back when it is loaded — half of the
retrieval step's bytes, which every run writes.

Nor does ``state`` repeat what the run row's own columns say (``COLUMNS``: the run's id,
agent, input, status, reason, step count, answer, usage and active time): every checkpoint
writes those columns anyway, and every old row version Postgres keeps until vacuum would
carry both copies. ``load`` puts the state back together from the columns.

A checkpoint written before this (``messages`` still in ``run.state``, or the columns'
copies) loads as it is, its own copies taking precedence; the first step committed after it
carries the whole transcript so far, and from then on the run is in this form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentdesk.runtime.agent import knowledge_block
from agentdesk.runtime.state import RunState

from .models import Run, Step

TRANSCRIPT = frozenset({"messages", "context"})
COLUMNS = frozenset({"run_id", "agent", "input", "status", "reason", "step_count", "answer",
                     "usage", "active_seconds"})


def row_state(state: RunState) -> dict[str, Any]:
    """What the run row's ``state`` keeps: neither the transcript nor what its columns hold
    (``lifecycle.checkpoint`` writes those from the same state)."""
    return state.model_dump(mode="json", exclude=set(TRANSCRIPT | COLUMNS))


def _columns(run: Run) -> dict[str, Any]:
    """The part of the state the run row's columns hold."""
    return {
        "run_id": str(run.pk), "agent": run.agent.slug, "input": run.input,
        "status": run.status, "reason": run.reason, "step_count": run.step_count,
        "answer": run.answer or None, "active_seconds": run.active_seconds,
        "usage": {"tokens_in": run.tokens_in, "tokens_out": run.tokens_out,
                  "tokens_cached": run.tokens_cached,
                  "tokens_reasoning": run.tokens_reasoning, "cost_usd": run.cost_usd},
    }


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
            added["messages"] = [_without_passages(m, state.context)
                                 for m in state.messages[self.messages:]]
        if state.context != self.context:
            added["context"] = state.context
        self.messages, self.context = len(state.messages), state.context
        return added or None


def _without_passages(message: dict[str, Any], context: list[dict[str, Any]]) -> dict[str, Any]:
    """A system message as stored: without the passages it ends with (they are in the
    context), marked so; any other message as it is."""
    if message.get("role") != "system" or not context:
        return message
    ending = "\n\n" + knowledge_block(context)
    content = message.get("content")
    if not isinstance(content, str) or not content.endswith(ending):
        return message
    return {**message, "content": content[:-len(ending)], "knowledge": True}


def _with_passages(message: dict[str, Any], context: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored message as the model saw it (``_without_passages`` undone)."""
    if not message.get("knowledge"):
        return message
    restored = {k: v for k, v in message.items() if k != "knowledge"}
    restored["content"] = f"{message['content']}\n\n{knowledge_block(context)}"
    return restored


def load(run: Run) -> tuple[RunState, Written]:
    """The run's state as of its last checkpoint (before its first: what its columns say),
    transcript included, and what of it the step rows hold."""
    data = {**_columns(run), **run.state}  # an older checkpoint's own copies win
    if "messages" in data:  # written before the transcript moved to the steps
        return RunState.model_validate(data), Written()
    if not run.state:  # submitted, no step yet: submitting writes no state (one INSERT)
        return RunState.model_validate(data), Written()
    messages: list[dict[str, Any]] = []
    context: list[dict[str, Any]] = []
    parts = (Step.objects.filter(run_id=run.pk, transcript__isnull=False)
             .order_by("index").values_list("transcript", flat=True))
    for part in parts:
        context = part.get("context", context)
        messages += [_with_passages(m, context) for m in part.get("messages", [])]
    state = RunState.model_validate({**data, "messages": messages, "context": context})
    return state, Written(messages=len(messages), context=context)
