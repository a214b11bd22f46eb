"""Shipped agents, looked up by slug. The database's Agent rows point here by slug."""

from __future__ import annotations

from agentdesk.runtime.agent import AgentSpec

from .support_refunds.agent import AGENT as SUPPORT_REFUNDS

AGENTS: dict[str, AgentSpec] = {SUPPORT_REFUNDS.slug: SUPPORT_REFUNDS}


def get_agent(slug: str) -> AgentSpec | None:
    return AGENTS.get(slug)
