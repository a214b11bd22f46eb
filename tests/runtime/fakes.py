"""The runtime tests' fakes are the test kit's doubles (``agentdesk.testing``).

One implementation: what agent authors test with is what the engine's own tests exercise.
This module only keeps the names the runtime tests import.
"""

from __future__ import annotations

from agentdesk.testing.models import (
    FunctionModel,
    ModelCall,
    Scripted,
    ScriptedModel,
    decision_reply,
    prompted_call_reply,
    raw_reply,
    tool_call_reply,
    with_logprobs,
)
from agentdesk.testing.store import (
    DictResponseCache,
    FakeClock,
    InMemoryStore,
    InMemoryTeamBudget,
    SimulatedCrash,
)

__all__ = [
    "DictResponseCache",
    "FakeClock",
    "FunctionModel",
    "InMemoryStore",
    "InMemoryTeamBudget",
    "ModelCall",
    "Scripted",
    "ScriptedModel",
    "SimulatedCrash",
    "decision_reply",
    "prompted_call_reply",
    "raw_reply",
    "tool_call_reply",
    "with_logprobs",
]
