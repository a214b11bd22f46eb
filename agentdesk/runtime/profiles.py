"""What a model is to the runtime: its prices, its limits and what its endpoint accepts.

A ``ModelProfile`` is one row of the model catalogue (admin → Models), copied into a run's
policy snapshot. The gateway shapes every request from it (tool calling, structured output,
reasoning parameters) and the budget prices every call with it. A model without a price
cannot spend: ``cost`` refuses, so a misconfigured model fails closed instead of costing $0.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel


class ToolCalling(StrEnum):
    """How the model is offered tools."""

    NATIVE = "native"  # the API's ``tools`` parameter and ``tool_calls`` in the reply
    PROMPTED = "prompted"  # tools described in the instructions; the reply is JSON we parse


class StructuredOutput(StrEnum):
    """How the model is asked for JSON, best first; the gateway uses what the profile says."""

    JSON_SCHEMA = "json_schema"  # response_format json_schema (strict)
    JSON_OBJECT = "json_object"  # response_format json_object, the schema in the instructions
    PROMPT = "prompt"  # no response_format: instructions only, parsed, one repair


class ReasoningEffort(StrEnum):
    NONE = ""
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Unpriced(Exception):
    """The model has no price in the catalogue: it may not spend."""


class ModelProfile(BaseModel):
    """One model as the catalogue describes it. Prices are USD per million tokens; None
    means "not set" (the model cannot spend), 0 is a valid explicit price (local models)."""

    name: str
    input_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    context_window: int = 128_000
    max_output_tokens: int = 16_384
    tool_calling: ToolCalling = ToolCalling.NATIVE
    structured_output: StructuredOutput = StructuredOutput.JSON_SCHEMA
    reasoning: bool = False  # sends max_completion_tokens, no temperature
    reasoning_effort: ReasoningEffort = ReasoningEffort.NONE
    logprobs: bool = False
    tokenizer: str = ""  # a tiktoken encoding (o200k_base, cl100k_base); "" = estimate

    @property
    def priced(self) -> bool:
        return None not in (self.input_per_mtok, self.cached_input_per_mtok,
                            self.output_per_mtok)

    def cost(self, tokens_in: int, tokens_cached: int, tokens_out: int) -> Decimal:
        """USD for one call (cached prompt tokens at the cached rate). Raises Unpriced."""
        if not self.priced:
            raise Unpriced(f"{self.name} has no price")
        assert self.input_per_mtok is not None and self.cached_input_per_mtok is not None
        assert self.output_per_mtok is not None
        uncached = max(tokens_in - tokens_cached, 0)
        total = (uncached * self.input_per_mtok + tokens_cached * self.cached_input_per_mtok
                 + tokens_out * self.output_per_mtok)
        return (total / Decimal(1_000_000)).quantize(Decimal("0.00000001"))
