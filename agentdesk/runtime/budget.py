"""Run bounds, checked *before* each model call against the worst case of that call.

The worst case is the prompt estimate plus ``max_output_tokens``, priced at the model's
uncached input rate, so a run can never cross its ceiling even by one call.
"""

from __future__ import annotations

from decimal import Decimal

from .outcomes import Reason
from .state import PolicySnapshot, RunState


def worst_case_cost(policy: PolicySnapshot, model: str, prompt_tokens: int) -> Decimal:
    profile = policy.profile(model)
    if not profile.priced:
        return Decimal("0")
    return profile.cost(prompt_tokens, 0, policy.max_output_tokens)


def check_steps_and_time(state: RunState, policy: PolicySnapshot) -> Reason | None:
    if state.step_count >= policy.max_steps:
        return Reason.STEP_LIMIT
    if state.active_seconds >= policy.max_seconds:
        return Reason.TIME_LIMIT
    return None


def check_spend(
    state: RunState, policy: PolicySnapshot, model: str, prompt_tokens: int
) -> Reason | None:
    worst_tokens = state.usage.total_tokens + prompt_tokens + policy.max_output_tokens
    if worst_tokens > policy.max_tokens:
        return Reason.TOKEN_LIMIT
    if state.usage.cost_usd + worst_case_cost(policy, model, prompt_tokens) > policy.max_cost_usd:
        return Reason.COST_LIMIT
    return None
