"""The tier table the app seeds its prices from."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentdesk.llmsim import MODELS, Quality, get_prices, price_table
from agentdesk.llmsim.app import SimSettings


def test_prices_match_the_public_openai_list() -> None:
    small, large = get_prices("sim-small"), get_prices("sim-large")
    assert (small.input_per_million, small.cached_input_per_million, small.output_per_million) == (
        Decimal("0.15"),
        Decimal("0.075"),
        Decimal("0.60"),
    )
    assert (large.input_per_million, large.cached_input_per_million, large.output_per_million) == (
        Decimal("2.50"),
        Decimal("1.25"),
        Decimal("10.00"),
    )
    assert set(price_table()) == set(MODELS) == {"sim-small", "sim-large"}


def test_cost_bills_cached_tokens_at_the_cached_rate() -> None:
    prices = get_prices("sim-large")
    assert prices.cost(1_000_000, 0, 0) == Decimal("2.50")
    assert prices.cost(1_000_000, 1_000_000, 0) == Decimal("1.25")
    assert prices.cost(2000, 1024, 100) == Decimal("0.00472")


def test_unknown_model_has_no_prices() -> None:
    with pytest.raises(KeyError):
        get_prices("gpt-9")


def test_tiers_differ_in_latency_and_quality() -> None:
    small, large = MODELS["sim-small"], MODELS["sim-large"]
    assert (small.base_latency_ms, large.base_latency_ms) == (150, 600)
    assert small.quality < large.quality == Quality.STRONG
    assert large.latency_seconds(0.5) == pytest.approx(0.3)
    assert large.latency_seconds(0) == 0


def test_latency_scale_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSIM_LATENCY_SCALE", "0.25")
    assert SimSettings.from_env().latency_scale == 0.25
    assert SimSettings.from_env(latency_scale=2).latency_scale == 2
    monkeypatch.delenv("LLMSIM_LATENCY_SCALE")
    assert SimSettings.from_env().latency_scale == 1.0
