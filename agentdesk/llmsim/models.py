"""The simulated model tiers: what each one costs, how slow it is, and how good it is.

The app seeds its model catalogue from here (see :func:`price_table`), so the numbers the
simulator reports and the numbers the app bills with can never drift apart.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from .modes import Mode, parse_model_name

LATENCY_SCALE_ENV = "LLMSIM_LATENCY_SCALE"
"""Environment variable that sets the default latency multiplier (0 = instant)."""


class Quality(IntEnum):
    """How carefully a tier reads the conversation; brains lower their confidence below STRONG."""

    BASIC = 1
    STRONG = 2


@dataclass(frozen=True)
class Prices:
    """US dollars per one million tokens, as OpenAI publishes them."""

    input_per_million: Decimal
    cached_input_per_million: Decimal
    output_per_million: Decimal

    def cost(self, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> Decimal:
        """Dollar cost of one call; cached prompt tokens are billed at the cached rate."""
        uncached = prompt_tokens - cached_tokens
        total = (
            uncached * self.input_per_million
            + cached_tokens * self.cached_input_per_million
            + completion_tokens * self.output_per_million
        )
        return total / Decimal(1_000_000)


@dataclass(frozen=True)
class SimModel:
    """One simulated model tier as listed by ``GET /v1/models``."""

    name: str
    prices: Prices
    base_latency_ms: int
    quality: Quality
    context_window: int
    modes: frozenset[Mode] = frozenset()
    """How this name is served (see ``modes``): the tier's own behaviour when empty."""

    def latency_seconds(self, latency_scale: float) -> float:
        """Simulated time to answer; a scale of 0 makes the simulator instant."""
        return self.base_latency_ms / 1000 * max(latency_scale, 0.0)


MODELS: dict[str, SimModel] = {
    # Prices: OpenAI's public price list for gpt-4o-mini (input / cached input / output per 1M).
    "sim-small": SimModel(
        name="sim-small",
        prices=Prices(Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
        base_latency_ms=150,
        quality=Quality.BASIC,
        context_window=128_000,
    ),
    # Prices: OpenAI's public price list for gpt-4o (input / cached input / output per 1M).
    "sim-large": SimModel(
        name="sim-large",
        prices=Prices(Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
        base_latency_ms=600,
        quality=Quality.STRONG,
        context_window=128_000,
    ),
}


def get_model(name: str) -> SimModel | None:
    """The tier called ``name`` served in the modes its suffixes name (``sim-small:reasoning``),
    or None when the simulator does not serve it."""
    parsed = parse_model_name(name)
    tier = MODELS.get(parsed.tier) if parsed else None
    if parsed is None or tier is None:
        return None
    if name == tier.name:
        return tier
    return dataclasses.replace(
        tier, name=name, modes=parsed.modes,
        context_window=parsed.context_window or tier.context_window,
    )


def get_prices(name: str) -> Prices:
    """Prices of one tier; raises KeyError for a model the simulator does not serve."""
    return MODELS[name].prices


def price_table() -> dict[str, Prices]:
    """Prices of every tier, keyed by model name, for seeding the model catalogue."""
    return {name: model.prices for name, model in MODELS.items()}


def default_latency_scale() -> float:
    """Latency multiplier from ``LLMSIM_LATENCY_SCALE``, 1.0 when unset or unparsable."""
    raw = os.environ.get(LATENCY_SCALE_ENV, "")
    try:
        return max(float(raw), 0.0) if raw.strip() else 1.0
    except ValueError:
        return 1.0
