"""Reads: calibration per agent and tier, from the last N labels (scoped to the user's teams).

For each agent the user can see and each of its tiers, the policy's ``calibration_window``
latest labels go to ``agentdesk.runtime.calibration.calibrate`` with the policy's
``confidently_wrong_target``: the reliability bins, the expected calibration error and the
threshold that would have kept confidently wrong actions under the target, with its interval
and the escalation rate it implies. Below ``MIN_LABELS`` it suggests nothing and says how
many more labels it needs.

Who may apply a suggestion (``may_tune``): an admin of the policy's team, or a superuser
(``runs.permissions``: a policy belongs to one team).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from agentdesk.runtime.calibration import Calibration, Label, calibrate

from . import permissions, selectors
from .models import Agent, ConfidenceLabel, Policy

MIN_LABELS = 50
BINS = 10
TIER_ORDER = ("small", "large")


@dataclass(frozen=True)
class TierCalibration:
    agent: Agent
    tier: str
    models: tuple[str, ...]  # the models whose steps the labels judge
    calibration: Calibration
    may_apply: bool

    @property
    def policy(self):
        return self.agent.policy

    @property
    def needed(self) -> int:
        """How many more labels before a suggestion (0 once there are enough)."""
        return max(0, MIN_LABELS - self.calibration.count)

    @property
    def suggestion(self) -> float | None:
        c = self.calibration
        return c.threshold if c.enough else None

    @property
    def no_suggestion(self) -> str:
        """Why there is no suggestion, in words ("" when there is one)."""
        if self.suggestion is not None:
            return ""
        if self.needed:
            return f"{self.calibration.count} labels; {self.needed} more needed."
        return self.calibration.reason or "No threshold keeps confidently wrong actions " \
            "under the target."

    @property
    def applicable(self) -> bool:
        """There is a suggestion, and it differs from what the policy uses now."""
        return self.suggestion is not None and \
            abs(self.suggestion - self.policy.confidence_threshold) > 1e-9

    @property
    def key(self) -> str:
        return f"{self.agent.pk}-{self.tier}"


def labels_of(agent: Agent, tier: str, window: int) -> list[ConfidenceLabel]:
    """The agent's latest ``window`` labels for ``tier``, newest first."""
    return list(ConfidenceLabel.objects.filter(agent=agent, tier=tier)
                .order_by("-created_at", "-id")[:window])


def calibrate_tier(agent: Agent, tier: str) -> tuple[Calibration, tuple[str, ...]]:
    policy = agent.policy
    rows = labels_of(agent, tier, policy.calibration_window)
    result = calibrate([Label(confidence=r.confidence, correct=r.correct) for r in rows],
                       policy.confidently_wrong_target, bins=BINS, min_labels=MIN_LABELS)
    return result, tuple(sorted({r.model for r in rows if r.model}))


def tiers_of(agent: Agent) -> list[str]:
    """The agent's policy tiers, then any other tier its labels name."""
    tiers = ["small", "large"] if agent.policy.large_model else ["small"]
    seen = ConfidenceLabel.objects.filter(agent=agent).values_list("tier", flat=True).distinct()
    extra = sorted(set(seen) - set(tiers))
    return tiers + extra


def for_user(user) -> list[TierCalibration]:
    """Every agent the user can see, each of its tiers calibrated."""
    agents = selectors.agents_for(user).select_related("policy").order_by("team__name", "slug")
    tunable = policies_tunable_by(user)
    return [
        TierCalibration(agent=agent, tier=tier, models=models, calibration=result,
                        may_apply=agent.policy_id in tunable)
        for agent in agents for tier in tiers_of(agent)
        for result, models in [calibrate_tier(agent, tier)]
    ]


def one_for(user, agent_id: int, tier: str) -> TierCalibration:
    """One agent's tier, for applying its suggestion (404 outside the user's teams)."""
    agent = selectors.agents_for(user).select_related("policy").filter(pk=agent_id).first()
    if agent is None:
        raise Http404("No such agent.")
    result, models = calibrate_tier(agent, tier)
    return TierCalibration(agent=agent, tier=tier, models=models, calibration=result,
                           may_apply=may_tune(user, agent.policy_id))


def policies_tunable_by(user) -> set[int]:
    """The policies of the teams the user administers (every policy for a superuser)."""
    return set(permissions.scoped(Policy.objects.all(), user, permissions.Action.ADMINISTER)
               .values_list("pk", flat=True))


def may_tune(user, policy_id: int) -> bool:
    team_id = Policy.objects.filter(pk=policy_id).values_list("team_id", flat=True).first()
    return permissions.can(user, permissions.Action.ADMINISTER, team_id)
