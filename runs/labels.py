"""Labels for calibration, written in the transaction of the judgement they come from.

Two sources, one rule: a label says whether the model step that made a proposal was right.

- **A decision** on an escalation that carried a model's proposal (``from_decision``, called
  by ``services.decide``): approved as proposed = right; rejected, edited, replied to instead
  or taken over = wrong (``lifecycle.overrides`` is the one definition of "wrong"). Abort and
  extend budget judge the run's limits, not the proposal, and answering the agent's own
  question judges nothing: none of them is a label.
- **A review** of a confident, auto-completed run (``from_review``). Which runs go to review
  is decided once, when the run ends (``sample_for_review``, called by
  ``lifecycle.checkpoint``): a deterministic hash of the run id below the policy's
  ``review_sample_rate``, so the same run is always in or out, and the share is the rate.
"""

from __future__ import annotations

import hashlib

from agentdesk.runtime.outcomes import Decision, StepKind

from .models import ConfidenceLabel, Escalation, ReviewItem, Run, Step

# The decisions that judge the proposal itself.
JUDGING = frozenset({Decision.APPROVE, Decision.REJECT, Decision.REPLY, Decision.TAKE_OVER})


def from_decision(esc: Escalation, decision: str, *, wrong: bool, user=None
                  ) -> ConfidenceLabel | None:
    """The label an operator's decision on ``esc`` makes, or None when it makes none: no
    proposal, a decision that does not judge it, or a proposal no model step made (a rule's
    fixed call has no confidence to calibrate)."""
    if not esc.proposed_tool or decision not in JUDGING:
        return None
    step = proposing_step(esc.run, esc.step_index)
    if step is None:
        return None
    confidence = step.confidence if step.confidence is not None else esc.confidence
    if confidence is None:
        return None
    return ConfidenceLabel.objects.create(
        team_id=esc.team_id, agent_id=esc.run.agent_id, run_id=esc.run_id,
        step_index=step.index, tier=step.tier, model=step.model, confidence=confidence,
        correct=not wrong, source=ConfidenceLabel.Source.DECISION, decided_by=_person(user),
    )


def proposing_step(run: Run, escalation_step: int) -> Step | None:
    """The model step whose proposal the escalation shows: the step right before it, when
    that is a model step (after a rule, a tool failure or an unknown outcome it is not)."""
    before = Step.objects.filter(run=run, index__lt=escalation_step).order_by("-index").first()
    return before if before is not None and before.kind == StepKind.MODEL else None


def from_review(item: ReviewItem, *, correct: bool, user=None) -> ConfidenceLabel:
    return ConfidenceLabel.objects.create(
        team_id=item.team_id, agent_id=item.agent_id, run_id=item.run_id,
        step_index=item.step_index, tier=item.tier, model=item.model,
        confidence=item.confidence, correct=correct, source=ConfidenceLabel.Source.REVIEW,
        decided_by=_person(user),
    )


# -- the review sample --------------------------------------------------------------------


def in_sample(run_id: int, rate: float) -> bool:
    """Is this run in a ``rate`` sample? The same answer every time it is asked, and true
    for about ``rate`` of all runs (the hash's first 8 bytes, read as a fraction of 2**64)."""
    if rate <= 0 or rate >= 1:
        return rate >= 1
    digest = hashlib.sha256(f"agentdesk-review:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def sample_for_review(run: Run) -> ReviewItem | None:
    """Queue a run that has just succeeded for review when it is confident, auto-completed
    (no human decided anything in it) and in its policy's sample. The item names the model
    step that decided the ending — the last one with a confidence."""
    if run.overridden or not in_sample(run.pk, run.policy.review_sample_rate):
        return None
    if Escalation.objects.filter(run_id=run.pk).exists():
        return None
    step = (Step.objects.filter(run_id=run.pk, kind=StepKind.MODEL, confidence__isnull=False)
            .order_by("-index").first())
    if step is None:  # answered by a rule: no confidence to check
        return None
    return ReviewItem.objects.create(
        team_id=run.team_id, run_id=run.pk, agent_id=run.agent_id, step_index=step.index,
        tier=step.tier, model=step.model, confidence=step.confidence,
    )


def _person(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None
