"""One model call with everything around it: bounds, the response cache, the team budget.

Order matters: step and time bounds first; then the cache (a hit costs nothing, so it
needs no budget); then the run's token and cost ceilings and a reservation on the team's
daily budget for the worst case of the call, settled with the real cost afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import budget
from .llm import ModelClient, ModelReply, ToolCallRequest, estimate_tokens
from .outcomes import Reason
from .ports import ResponseCache, TeamBudget
from .state import PolicySnapshot, RunState


@dataclass(frozen=True)
class CallOutcome:
    reply: ModelReply | None
    cost_usd: Decimal = Decimal("0")
    cache_hit: bool = False
    breach: Reason | None = None


def cache_key(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
              max_tokens: int) -> str:
    body = json.dumps([model, messages, tools, max_tokens, 0], sort_keys=True, default=str)
    return "llm:" + hashlib.sha256(body.encode()).hexdigest()


def _reply_to_dict(reply: ModelReply) -> dict[str, Any]:
    return dataclasses.asdict(reply)


def _reply_from_dict(data: dict[str, Any]) -> ModelReply:
    calls = [ToolCallRequest(**c) for c in data.get("tool_calls", [])]
    return ModelReply(**{**data, "tool_calls": calls, "latency_ms": 0})


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

    def price(self, reply: ModelReply) -> Decimal:
        profile = self.policy.profile(reply.model)
        if not profile.priced:
            return Decimal("0")
        return profile.cost(reply.tokens_in, reply.tokens_cached, reply.tokens_out)

    def call(
        self, state: RunState, model: str, messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> CallOutcome:
        """Make the call, or say which bound forbids it. ``ModelError`` propagates."""
        breach = budget.check_steps_and_time(state, self.policy)
        if breach is not None:
            return CallOutcome(reply=None, breach=breach)
        max_tokens = self.policy.max_output_tokens
        key = cache_key(model, messages, tools, max_tokens) if self.cache else ""
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return CallOutcome(reply=_reply_from_dict(cached), cache_hit=True)
        prompt_tokens = estimate_tokens(messages, tools)
        breach = budget.check_spend(state, self.policy, model, prompt_tokens)
        if breach is not None:
            return CallOutcome(reply=None, breach=breach)
        worst = budget.worst_case_cost(self.policy, model, prompt_tokens)
        if self.team_budget is not None and not self.team_budget.reserve(worst):
            return CallOutcome(reply=None, breach=Reason.TEAM_BUDGET)
        actual = Decimal("0")
        try:
            reply = self.model.complete(
                profile=self.policy.profile(model), messages=messages, tools=tools,
                max_tokens=max_tokens,
            )
            actual = self.price(reply)
        finally:
            if self.team_budget is not None:
                self.team_budget.settle(worst, actual)
        if self.cache is not None:
            self.cache.set(key, _reply_to_dict(reply), self.policy.cache_ttl_seconds)
        return CallOutcome(reply=reply, cost_usd=actual)
