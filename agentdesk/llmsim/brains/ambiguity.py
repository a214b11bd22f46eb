"""When a task message is ambiguous, and what that does to a weaker tier's confidence.

Each rule is a named predicate on the task text; add a rule to ``AMBIGUITY_RULES`` to
teach every brain a new kind of ambiguity. Only tiers below ``Quality.STRONG`` are
affected: a strong model reads past hedges, a basic one gets less sure of itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..models import Quality, SimModel
from .text import contains_phrase, order_numbers

AMBIGUOUS_CONFIDENCE = 0.55
"""Confidence a basic tier reports on ambiguous tasks (never raising a lower value)."""

HEDGE_PHRASES: tuple[str, ...] = (
    "maybe",
    "not sure",
    "i think",
    "or something",
    "perhaps",
    "i guess",
)


@dataclass(frozen=True)
class AmbiguityRule:
    """A named test for one kind of ambiguity in a task message."""

    name: str
    applies: Callable[[str], bool]


AMBIGUITY_RULES: tuple[AmbiguityRule, ...] = (
    AmbiguityRule("hedged wording", lambda text: contains_phrase(text, HEDGE_PHRASES) is not None),
    AmbiguityRule("several order numbers", lambda text: len(order_numbers(text)) >= 2),
)


def ambiguity_reasons(task: str) -> list[str]:
    """Names of the rules the task message triggers (empty when it is clear)."""
    return [rule.name for rule in AMBIGUITY_RULES if rule.applies(task)]


def calibrate(confidence: float, task: str, model: SimModel) -> float:
    """The confidence ``model`` reports for a decision it would make with ``confidence``."""
    if model.quality < Quality.STRONG and ambiguity_reasons(task):
        return min(confidence, AMBIGUOUS_CONFIDENCE)
    return confidence
