"""Scenario logic per agent, chosen by the slug in ``You are the <slug> agent.``."""

from __future__ import annotations

from collections.abc import Callable

from ..models import SimModel
from . import generic, support_refunds
from .ambiguity import TaskKind, task_kind
from .conversation import Conversation, read_conversation
from .replies import Decision, Reply, ToolCall

Brain = Callable[[Conversation, SimModel], Reply]

BRAINS: dict[str, Brain] = {
    "support-refunds": support_refunds.reply,
}
DIFFICULTY: dict[str, Callable[[str], TaskKind]] = {
    "support-refunds": task_kind,
}
"""How hard each scenario's tasks are for a keyword reader (see ``ambiguity``); a brain
without an entry reads every task the same way (clear)."""


def brain_for(slug: str | None) -> Brain:
    """The brain for an agent slug; agents without a scenario get the echoing generic brain."""
    return BRAINS.get(slug or "", generic.reply)


def difficulty(conversation: Conversation) -> TaskKind:
    """How hard the conversation's task is for its brain's keyword reading."""
    kind_of = DIFFICULTY.get(conversation.agent_slug or "")
    return kind_of(conversation.task) if kind_of else TaskKind.CLEAR


__all__ = [
    "BRAINS",
    "Brain",
    "Conversation",
    "Decision",
    "Reply",
    "TaskKind",
    "ToolCall",
    "brain_for",
    "difficulty",
    "read_conversation",
]
