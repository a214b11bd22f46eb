"""Scenario logic per agent, chosen by the slug in ``You are the <slug> agent.``."""

from __future__ import annotations

from collections.abc import Callable

from ..models import SimModel
from . import generic, support_refunds
from .conversation import Conversation, read_conversation
from .replies import Decision, Reply, ToolCall

Brain = Callable[[Conversation, SimModel], Reply]

BRAINS: dict[str, Brain] = {
    "support-refunds": support_refunds.reply,
}


def brain_for(slug: str | None) -> Brain:
    """The brain for an agent slug; agents without a scenario get the echoing generic brain."""
    return BRAINS.get(slug or "", generic.reply)


__all__ = [
    "BRAINS",
    "Brain",
    "Conversation",
    "Decision",
    "Reply",
    "ToolCall",
    "brain_for",
    "read_conversation",
]
