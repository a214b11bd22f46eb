"""Installed agents, looked up by slug. The database's Agent rows point here by slug.

Agents are found from ``module:attribute`` paths (the ``AGENTDESK_AGENTS`` setting) and the
``agentdesk.agents`` entry-point group (``registry.py``); the shipped ``support_refunds``
agent is found through the setting's default path like any other.
"""

from __future__ import annotations

from agentdesk.runtime.agent import AgentSpec

from .registry import Registry

AGENTS = Registry()


def get_agent(slug: str) -> AgentSpec | None:
    return AGENTS.get(slug)
