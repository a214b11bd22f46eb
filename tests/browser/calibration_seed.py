"""Seed the browser app's database for the calibration test, in the app's own environment:
``python -m tests.browser.calibration_seed PASSWORD`` (run by the test with ``stack.env``).

A team of its own (``calib``) whose agent has a policy of its own, so applying a threshold
changes no other browser test's runs: a team admin who is not staff, 300 labels on the
small tier, and two confident runs that ended without a human, sampled for review by the
lifecycle's own hook. Prints the sampled run ids as JSON.
"""

from __future__ import annotations

import json
import os
import random
import sys


def main(password: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentdesk.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from runs import labels
    from runs.models import (
        Agent,
        ConfidenceLabel,
        Membership,
        Policy,
        ReviewItem,
        Run,
        Step,
        Team,
        ToolCall,
    )

    team, _ = Team.objects.get_or_create(slug="calib", defaults={"name": "Calibration team"})
    policy, _ = Policy.objects.get_or_create(team=team, name="calibrated", defaults={
        "review_sample_rate": 1.0, "confidently_wrong_target": 0.02})
    agent, _ = Agent.objects.get_or_create(team=team, slug="support-refunds", defaults={
        "name": "Support refunds", "policy": policy})
    user, _ = get_user_model().objects.get_or_create(username="calibadmin")
    user.set_password(password)
    user.save()
    Membership.objects.update_or_create(user=user, team=team, defaults={"role": "admin"})
    snapshot = policy.snapshot().model_dump(mode="json")

    if not ConfidenceLabel.objects.filter(agent=agent).exists():
        source = Run.objects.create(team=team, agent=agent, input={"message": "history"},
                                    status="succeeded", policy_snapshot=snapshot, state={})
        rng = random.Random(13)
        rows = []
        for i in range(300):
            confidence = round(rng.uniform(0.35, 1.0), 3)
            rows.append(ConfidenceLabel(
                team=team, agent=agent, run=source, step_index=i, tier="small",
                model="sim-small", confidence=confidence, source="decision",
                correct=confidence >= 0.9 or rng.random() < confidence ** 2))
        ConfidenceLabel.objects.bulk_create(rows)

    sampled = []
    for message, answer, tool, args, confidence in (
        ("Where is my order 1077?", "Order 1077 is in transit and arrives on Friday.",
         "lookup_order", {"order_id": "1077"}, 0.94),
        ("I want a refund for order 1001", "Refund of $25.00 issued for order 1001.",
         "issue_refund", {"order_id": "1001", "amount": 25.0, "reason": "damaged"}, 0.91),
    ):
        run = Run.objects.create(team=team, agent=agent, input={"message": message},
                                 status="succeeded", answer=answer, policy_snapshot=snapshot,
                                 state={}, step_count=2)
        Step.objects.create(run=run, index=0, kind="model", tier="small", model="sim-small",
                            confidence=confidence)
        Step.objects.create(run=run, index=1, kind="final", name="succeeded")
        ToolCall.objects.create(run=run, idempotency_key=f"{run.pk}:0", tool=tool, args=args,
                                status="succeeded", result={"ok": True})
        item = labels.sample_for_review(run)  # the hook lifecycle calls when a run ends
        assert isinstance(item, ReviewItem)
        sampled.append(run.pk)
    sys.stdout.write(json.dumps({"runs": sampled}))


if __name__ == "__main__":
    main(sys.argv[1])
