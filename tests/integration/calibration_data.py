"""Test data for calibration: escalations proposed by a model step, and labels in bulk."""

from __future__ import annotations

import random

from runs.models import Agent, ConfidenceLabel, Escalation, Run, Step, Team

from .console_data import escalation


def proposed(team: Team, *, confidence: float = 0.62, tier: str = "small",
             model: str = "sim-small", **fields) -> Escalation:
    """An open escalation whose proposal a model step made (index 0), as the engine records
    it: the model step, then the escalation step right after it."""
    esc = escalation(team, confidence=confidence, **fields)
    Step.objects.create(run=esc.run, index=0, kind="model", tier=tier, model=model,
                        confidence=confidence)
    Step.objects.create(run=esc.run, index=1, kind="escalation", name=esc.reason,
                        confidence=confidence)
    Escalation.objects.filter(pk=esc.pk).update(step_index=1)
    Run.objects.filter(pk=esc.run_id).update(step_count=2)
    esc.refresh_from_db()
    return esc


def seed_labels(team: Team, count: int, *, agent_slug: str = "support-refunds",
                tier: str = "small", seed: int = 7) -> list[ConfidenceLabel]:
    """``count`` labels whose accuracy grows with their confidence, and is perfect from 0.9
    up (so a threshold meeting any target exists), on one finished run."""
    agent = Agent.objects.get(team=team, slug=agent_slug)
    run = Run.objects.create(team=team, agent=agent, input={"message": "seed"},
                             status="succeeded", policy_snapshot=agent.policy.snapshot()
                             .model_dump(mode="json"), state={})
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        confidence = round(rng.uniform(0.3, 1.0), 3)
        rows.append(ConfidenceLabel(
            team=team, agent=agent, run=run, step_index=i, tier=tier, model=f"sim-{tier}",
            confidence=confidence, correct=confidence >= 0.9 or rng.random() < confidence ** 2,
            source="decision"))
    return ConfidenceLabel.objects.bulk_create(rows)
