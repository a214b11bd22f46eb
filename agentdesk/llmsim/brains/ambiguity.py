"""When a task message is hard for a keyword reader, and when it is merely hedged.

Each rule is a named predicate on the task text; add a rule to ``AMBIGUITY_RULES`` to
teach every brain a new kind of ambiguity. A rule that ``misleads`` fires where the basic
tier's keyword reading (see ``reading``) can differ from a careful one — a negated
request, a question about policy, several orders, an explicit partial amount: those tasks
are **hard**. Hedged wording ("maybe", "I think") does not mislead the keyword reading,
it only makes a tier unsure: those tasks are **hedged**. Everything else is **clear**.

What a tier does with that — how often it notices, how sure it says it is, what its
log-probabilities and samples show — is the simulator's declared error model
(``agentdesk.llmsim.error_model``), not decided here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .cues import money_amounts, negated_refund, policy_question
from .text import contains_phrase, order_numbers

HEDGE_PHRASES: tuple[str, ...] = (
    "maybe",
    "not sure",
    "i think",
    "or something",
    "perhaps",
    "i guess",
)


class TaskKind(Enum):
    CLEAR = "clear"
    HEDGED = "hedged"  # unsure wording; the keyword reading is still right
    HARD = "hard"  # the keyword reading can be wrong


@dataclass(frozen=True)
class AmbiguityRule:
    """A named test for one kind of ambiguity in a task message."""

    name: str
    applies: Callable[[str], bool]
    misleads: bool = True
    """True when the keyword reading can be wrong where the rule fires."""


AMBIGUITY_RULES: tuple[AmbiguityRule, ...] = (
    AmbiguityRule("hedged wording", lambda text: contains_phrase(text, HEDGE_PHRASES) is not None,
                  misleads=False),
    AmbiguityRule("several order numbers", lambda text: len(order_numbers(text)) >= 2),
    AmbiguityRule("negated request", negated_refund),
    AmbiguityRule("policy question", policy_question),
    AmbiguityRule("explicit amount", lambda text: bool(money_amounts(text))),
)


def ambiguity_reasons(task: str) -> list[str]:
    """Names of the rules the task message triggers (empty when it is clear)."""
    return [rule.name for rule in AMBIGUITY_RULES if rule.applies(task)]


def task_kind(task: str) -> TaskKind:
    """Hard when a misleading rule fires, hedged when only hedging does, else clear."""
    fired = [rule for rule in AMBIGUITY_RULES if rule.applies(task)]
    if any(rule.misleads for rule in fired):
        return TaskKind.HARD
    return TaskKind.HEDGED if fired else TaskKind.CLEAR
