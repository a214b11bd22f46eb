"""Loop detection: the same call over and over, or tool results that bring nothing new."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .proposals import call_signature
from .state import PolicySnapshot, RunState, ToolCallProposal


def repeated_call(state: RunState, policy: PolicySnapshot, call: ToolCallProposal) -> bool:
    """Count this call; True once it has been made more than ``loop_repeat_limit`` times."""
    sig = call_signature(call)
    state.call_counts[sig] = state.call_counts.get(sig, 0) + 1
    return state.call_counts[sig] > policy.loop_repeat_limit


def no_progress(state: RunState, policy: PolicySnapshot, result: Any, error: str) -> bool:
    """Record a tool outcome; True after ``no_progress_limit`` outcomes with nothing new."""
    digest = hashlib.sha256(
        json.dumps({"r": result, "e": error}, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    if digest in state.result_hashes:
        state.stale_results += 1
    else:
        state.result_hashes.append(digest)
        state.stale_results = 0
    return state.stale_results >= policy.no_progress_limit
