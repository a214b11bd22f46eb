"""System checks: every agent source (``AGENTDESK_AGENTS`` paths, ``agentdesk.agents`` entry
points) must load, so a typo or a missing package stops ``manage.py check``/``migrate``/
``runserver`` with the path named rather than surfacing later as a refused submission.

With ``--deploy``: the secret key is not a publicly known one (an error, with how to make
one) and is set explicitly rather than generated into the data folder (a warning)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.checks import Warning as CheckWarning

from agentdesk import secret_key
from agentdesk.agents import AGENTS
from agentdesk.agents.registry import discover

AGENT_PATH_BROKEN = "agentdesk.E001"
SECRET_KEY_KNOWN = "agentdesk.E002"
SECRET_KEY_GENERATED = "agentdesk.W002"


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


def secret_key_set(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Deploy check: what start-up refuses outside DEBUG, said again where DEBUG let it by,
    and a key generated into the data folder (fine for one process, not for a deployment
    whose processes must share it)."""
    hint = f"Make one with: {secret_key.HOW_TO} and set DJANGO_SECRET_KEY in every process."
    if secret_key.known(settings.SECRET_KEY):
        return [Error("SECRET_KEY is a publicly known key: anyone can forge sessions.",
                      hint=hint, id=SECRET_KEY_KNOWN)]
    if getattr(settings, "SECRET_KEY_SOURCE", secret_key.ENV) == secret_key.GENERATED:
        path = settings.DATA_DIR / secret_key.GENERATED_FILE
        return [CheckWarning(f"DJANGO_SECRET_KEY is not set: this process uses the key "
                             f"generated in {path}, which other machines do not share.",
                             hint=hint, id=SECRET_KEY_GENERATED)]
    return []
