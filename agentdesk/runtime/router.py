"""Intelligence tiering: each decision goes to the cheapest tier that is confident enough.

Small model first; a decision below the threshold is asked again of the large model, and
the run stays on the large model while it needs it. After ``downgrade_after`` confident
large-model decisions in a row, the run steps back down. Below the large model's threshold
the decision goes to a human (the loop escalates).
"""

from __future__ import annotations

from .state import PolicySnapshot, RunState

SMALL, LARGE = "small", "large"


def has_large(policy: PolicySnapshot) -> bool:
    return bool(policy.large_model) and policy.large_model != policy.small_model


def tiers(policy: PolicySnapshot, state: RunState | None = None) -> list[tuple[str, str]]:
    """(tier, model) in the order they are tried for the next decision."""
    large = [(LARGE, policy.large_model)] if has_large(policy) else []
    if state is not None and state.tier == LARGE and large:
        return large
    return [(SMALL, policy.small_model), *large]


def after_decision(state: RunState, policy: PolicySnapshot, tier: str, confident: bool) -> str:
    """Update the run's tier after a decision by ``tier``; returns why, for the step row."""
    if tier == SMALL:
        state.tier, state.large_streak = SMALL, 0
        return "small model confident" if confident else "small model unsure"
    if not confident:
        state.tier, state.large_streak = LARGE, 0
        return "large model unsure too: a human decides"
    state.large_streak += 1
    if state.large_streak >= policy.downgrade_after:
        state.tier, state.large_streak = SMALL, 0
        return f"{policy.downgrade_after} confident large-model steps: stepping back down"
    state.tier = LARGE
    return "small model was unsure: large model decides"
