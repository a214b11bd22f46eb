"""When a task message is ambiguous, and what that does to a weaker tier's confidence.

Each rule is a named predicate on the task text; add a rule to ``AMBIGUITY_RULES`` to
teach every brain a new kind of ambiguity. Only tiers below ``Quality.STRONG`` are
affected: a strong model reads past hedges, a basic one gets less sure of itself.

The rules are the basic tier's calibration: they fire on the messages where its keyword
reading (see ``reading``) can differ from a careful one — a negated request, a question
about policy, several orders, an explicit partial amount — and on hedged wording, where it
is merely unsure. A tier that is unsure where it is likely wrong is what makes tiering
(small model first, large model when unsure) safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..models import Quality, SimModel
from .cues import money_amounts, negated_refund, policy_question
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
    AmbiguityRule("negated request", negated_refund),
    AmbiguityRule("policy question", policy_question),
    AmbiguityRule("explicit amount", lambda text: bool(money_amounts(text))),
)


def ambiguity_reasons(task: str) -> list[str]:
    """Names of the rules the task message triggers (empty when it is clear)."""
    return [rule.name for rule in AMBIGUITY_RULES if rule.applies(task)]


def calibrate(confidence: float, task: str, model: SimModel) -> float:
    """The confidence ``model`` reports for a decision it would make with ``confidence``."""
    if model.quality < Quality.STRONG and ambiguity_reasons(task):
        return min(confidence, AMBIGUOUS_CONFIDENCE)
    return confidence
