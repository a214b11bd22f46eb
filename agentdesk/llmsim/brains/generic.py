"""Fallback brain for agents without a scenario: echo the latest user message as the answer.

Useful to smoke-test a new agent end to end before it gets a scenario of its own.
"""

from __future__ import annotations

from ..models import SimModel
from .conversation import Conversation
from .replies import Decision, Reply

ECHO_CONFIDENCE = 0.9


def reply(conversation: Conversation, model: SimModel) -> Reply:
    """Answer with the latest user message, verbatim (fault markers removed)."""
    return Decision.final(conversation.latest_user_text or conversation.task, ECHO_CONFIDENCE)
