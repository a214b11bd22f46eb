"""Intelligence tiering, v1: the small model first, the large one when the small is unsure.

A decision below the policy's confidence threshold is asked again of the large model; if
the large model is unsure as well, the loop hands the decision to a human.
"""

from __future__ import annotations

from .state import PolicySnapshot


def tiers(policy: PolicySnapshot) -> list[tuple[str, str]]:
    """(tier name, model) in the order they are tried."""
    chosen = [("small", policy.small_model)]
    if policy.large_model and policy.large_model != policy.small_model:
        chosen.append(("large", policy.large_model))
    return chosen
