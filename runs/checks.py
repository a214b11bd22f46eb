"""System checks: every agent source (``AGENTDESK_AGENTS`` paths, ``agentdesk.agents`` entry
points) must load, so a typo or a missing package stops ``manage.py check``/``migrate``/
``runserver`` with the path named rather than surfacing later as a refused submission."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error

from agentdesk.agents import AGENTS
from agentdesk.agents.registry import discover

AGENT_PATH_BROKEN = "agentdesk.E001"


def agents_load(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """One error per agent source that gives no agent (or a slug another one took).
    Discovers afresh: the check sees the settings as they are now."""
    loaded = discover(settings.AGENTDESK_AGENTS)
    return [Error(f"Agent {p.source}: {p.message}", hint=p.hint, id=AGENT_PATH_BROKEN)
            for p in loaded.problems]


def follow_agent_setting(*, setting: str, value: Any, **kwargs: Any) -> None:
    """``setting_changed`` receiver: tests that override AGENTDESK_AGENTS get those agents."""
    if setting == "AGENTDESK_AGENTS":
        AGENTS.configure(value if value is not None else ())
