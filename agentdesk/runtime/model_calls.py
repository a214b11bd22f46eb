"""One model call with everything around it: bounds, the response cache, the team budget.

Order matters: step and time bounds first; then the price (a model without one is refused
before anything, so it can never spend); then the cache (a hit costs nothing, so it needs
no budget); then the run's token and cost ceilings and a reservation on the team's daily
budget for the worst case of the call, settled with the real cost afterwards.

Money fails closed: a reply without ``usage`` is billed at exactly the worst case that was
reserved for it, and flagged on its step. After every call the reported prompt tokens are
compared with the estimate (``record``): the ratio goes on the step, and a server that
counts more than we do raises the reservation of the run's later calls (``tokens.py``).

The decision call asks for token log-probabilities when the policy's confidence signals
include ``logprobs`` and the model's profile says its endpoint returns them. A sample for
the agreement signal (``temperature`` set) goes through the same checks and reservation,
counted on top of the step's usage so far (``pending``), but never through the cache: it
is deliberately non-deterministic, and a cached sample would agree with itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import budget, tokens
from .llm import ModelClient, ModelReply, Sampling, TokenLogprob, ToolCallRequest
from .options import ConfidenceSignal
from .outcomes import Reason
from .ports import ResponseCache, TeamBudget
from .state import PolicySnapshot, RunState, StepRecord, Usage


@dataclass(frozen=True)
class CallOutcome:
    reply: ModelReply | None
    cost_usd: Decimal = Decimal("0")
    cache_hit: bool = False
    breach: Reason | None = None
    prompt: tokens.PromptCount | None = None  # counted before the call
    reserved_prompt_tokens: int = 0  # what the checks and the team budget held for it
    usage_missing: bool = False  # no ``usage``: billed at the reservation
    model: str = ""  # the model asked (the reply may name a dated snapshot of it)


def unpriced_question(model: str) -> str:
    return (f"The model {model} has no price in the model catalogue, so it may not spend and "
            f"was not called. An admin must set its prices in admin → Models → {model} (0 is "
            "a valid price, e.g. for a local model); then approve to continue, or abort.")


def record(state: RunState, step: StepRecord, outcome: CallOutcome) -> None:
    """Put what a call used on its (uncommitted) step, and learn from the reported prompt
    tokens: ``prompt_tokens_estimated``, ``prompt_tokens_reserved``, the ratio reported ÷
    estimated, or ``usage_missing`` when the reply did not say."""
    reply = outcome.reply
    assert reply is not None
    if outcome.cache_hit:
        step.args["cache_hit"] = True
        return
    step.usage = usage_of(outcome)
    prompt = outcome.prompt
    assert prompt is not None
    step.args["prompt_tokens_estimated"] = prompt.estimate
    step.args["prompt_tokens_reserved"] = outcome.reserved_prompt_tokens
    if outcome.usage_missing:
        step.args["usage_missing"] = True
        return
    model = outcome.model or step.model
    step.args["prompt_tokens_ratio"] = round(reply.tokens_in / max(prompt.estimate, 1), 4)
    state.prompt_token_ratios[model] = tokens.learned_ratio(
        state.prompt_token_ratios.get(model, 1.0), prompt.estimate, reply.tokens_in)


def usage_of(outcome: CallOutcome) -> Usage:
    """What a call (not served from the cache) used, as billed."""
    reply = outcome.reply
    assert reply is not None
    return Usage(tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
                 tokens_cached=reply.tokens_cached, tokens_reasoning=reply.tokens_reasoning,
                 cost_usd=outcome.cost_usd)


def policy_version(policy: PolicySnapshot) -> str:
    """A hash of the whole snapshot (models and prices, limits, rules, thresholds): part of
    every cache key, so a reply cached under one version of a policy is never served to a
    run under another. The team is in the key too: the cache adapter scopes its keys to the
    run's team (``runs.response_cache``)."""
    body = json.dumps(policy.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def cache_key(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
              max_tokens: int, logprobs: bool = False, policy: str = "") -> str:
    parts: list[Any] = [model, messages, tools, max_tokens, 0, policy]
    if logprobs:  # a reply without logprobs must not answer a call that asks for them
        parts.append("logprobs")
    body = json.dumps(parts, sort_keys=True, default=str)
    return "llm:" + hashlib.sha256(body.encode()).hexdigest()


def _reply_to_dict(reply: ModelReply) -> dict[str, Any]:
    return dataclasses.asdict(reply)


def _reply_from_dict(data: dict[str, Any]) -> ModelReply:
    calls = [ToolCallRequest(**c) for c in data.get("tool_calls", [])]
    logprobs = data.get("logprobs")
    if logprobs is not None:
        logprobs = [TokenLogprob(**t) for t in logprobs]
    return ModelReply(**{**data, "tool_calls": calls, "latency_ms": 0, "logprobs": logprobs})


class ModelCaller:
    def __init__(
        self,
        model: ModelClient,
        policy: PolicySnapshot,
        *,
        team_budget: TeamBudget | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.team_budget = team_budget
        self.cache = cache if policy.cache_ttl_seconds > 0 else None
        self.policy_version = policy_version(policy) if self.cache is not None else ""

    def call(
        self, state: RunState, model: str, messages: list[dict[str, Any]],
        tools: list[dict[str, Any]], *, temperature: float | None = None,
        pending: Usage | None = None,
    ) -> CallOutcome:
        """Make the call, or say which bound forbids it. ``ModelError`` propagates.

        ``temperature``: a sample for the agreement signal (never cached); ``pending``: the
        usage of the step in progress, not yet in ``state.usage``."""
        breach = budget.check_steps_and_time(state, self.policy)
        if breach is not None:
            return CallOutcome(reply=None, breach=breach)
        profile = self.policy.profile(model)
        if not profile.priced:
            return CallOutcome(reply=None, breach=Reason.MODEL_UNPRICED)
        max_tokens = self.policy.max_output_tokens
        sample = temperature is not None
        logprobs = (not sample and profile.logprobs
                    and ConfidenceSignal.LOGPROBS in self.policy.confidence_signals)
        cache = None if sample else self.cache
        key = (cache_key(model, messages, tools, max_tokens, logprobs, self.policy_version)
               if cache else "")
        if cache is not None:
            cached = cache.get(key)
            if cached is not None:
                return CallOutcome(reply=_reply_from_dict(cached), cache_hit=True)
        prompt = tokens.count_prompt(profile, messages, tools)
        reserved = prompt.reserve(state.prompt_token_ratios.get(model, 1.0))
        breach = budget.check_spend(state, self.policy, model, reserved, pending)
        if breach is not None:
            return CallOutcome(reply=None, breach=breach)
        worst = budget.worst_case_cost(self.policy, model, reserved)
        if self.team_budget is not None and not self.team_budget.reserve(worst):
            return CallOutcome(reply=None, breach=Reason.TEAM_BUDGET)
        actual = Decimal("0")
        try:
            reply = self.model.complete(profile=profile, messages=messages, tools=tools,
                                        max_tokens=max_tokens,
                                        sampling=Sampling(temperature, logprobs))
            if not reply.usage_reported:  # unknown tokens: bill what was held for them
                reply = dataclasses.replace(reply, tokens_in=reserved, tokens_cached=0,
                                            tokens_out=max_tokens, tokens_reasoning=0)
            # priced as the model that was checked and reserved for, whatever name the
            # endpoint answers with (e.g. a dated snapshot of it)
            actual = profile.cost(reply.tokens_in, reply.tokens_cached, reply.tokens_out)
        finally:
            if self.team_budget is not None:
                self.team_budget.settle(worst, actual)
        if cache is not None:
            cache.set(key, _reply_to_dict(reply), self.policy.cache_ttl_seconds)
        return CallOutcome(reply=reply, cost_usd=actual, prompt=prompt,
                           reserved_prompt_tokens=reserved,
                           usage_missing=not reply.usage_reported, model=model)
