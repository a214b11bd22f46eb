"""Run bounds, checked *before* each model call against the worst case of that call.

The worst case is the prompt tokens reserved for the call (``tokens.PromptCount.reserve``:
an upper bound, not the plain estimate) plus ``max_output_tokens``, priced at the model's
uncached input rate. So a call whose reported usage stays within its reservation can never
take a run past its token or cost ceiling. A model without a price has no worst case: the
caller refuses it before asking here (``Unpriced`` otherwise).
"""

from __future__ import annotations

from decimal import Decimal

from .outcomes import Reason
from .state import PolicySnapshot, RunState, Usage


def worst_case_cost(policy: PolicySnapshot, model: str, prompt_tokens: int) -> Decimal:
    """USD of ``prompt_tokens`` uncached in and a full output. Raises ``Unpriced``."""
    return policy.profile(model).cost(prompt_tokens, 0, policy.max_output_tokens)


def check_steps_and_time(state: RunState, policy: PolicySnapshot) -> Reason | None:
    if state.step_count >= policy.max_steps:
        return Reason.STEP_LIMIT
    if state.active_seconds >= policy.max_seconds:
        return Reason.TIME_LIMIT
    return None


def check_spend(
    state: RunState, policy: PolicySnapshot, model: str, prompt_tokens: int,
    pending: Usage | None = None,
) -> Reason | None:
    """``prompt_tokens`` is the call's reservation, not its estimate. ``pending`` is usage
    of the step in progress, not yet in ``state.usage`` (the agreement signal's samples are
    checked against the decision call and the samples before them)."""
    used = state.usage if pending is None else Usage(
        tokens_in=state.usage.tokens_in + pending.tokens_in,
        tokens_out=state.usage.tokens_out + pending.tokens_out,
        cost_usd=state.usage.cost_usd + pending.cost_usd)
    worst_tokens = used.total_tokens + prompt_tokens + policy.max_output_tokens
    if worst_tokens > policy.max_tokens:
        return Reason.TOKEN_LIMIT
    if used.cost_usd + worst_case_cost(policy, model, prompt_tokens) > policy.max_cost_usd:
        return Reason.COST_LIMIT
    return None
