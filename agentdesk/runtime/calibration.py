"""Calibration: from labelled decisions to a confidence threshold a team can trust.

Plain Python (no Django, no numpy), so the console, the benchmark and the tests share it.
A *label* is one decision the agent proposed at some ``confidence``, judged afterwards by
a human (approved as proposed = ``correct``; rejected, edited, corrected or taken over =
not). :func:`calibrate` turns the latest labels into:

- **bins** (the reliability diagram): ``bins`` equal-width bins on [0, 1], the last one
  closed at 1.0; only bins that hold at least one label are returned, in order. Each has
  the labels' mean confidence and their accuracy (share correct).
- **ECE**, the expected calibration error: ``Σ_b (n_b / n) · |accuracy_b − confidence_b|``
  over those bins. 0 is perfectly calibrated; 0.2 means the stated confidence is off by
  20 points on average.
- **confidently wrong rate at a threshold t**: the share of *all* labelled decisions whose
  confidence is ≥ t *and* that were wrong, i.e. the wrong actions a policy with threshold
  t would have let through without a human (per decision taken, not per confident one:
  ``#{c ≥ t and wrong} / n``).
- **threshold**: the lowest t on the grid 0.50, 0.51, …, 0.99 whose confidently wrong
  rate is *surely* under the target: the upper end of its 95 % Wilson score interval
  (:func:`wilson_upper`, ``Z`` = 1.96) is ≤ ``target``. Lowest, because every step up
  sends more decisions to the next tier (cost) for less risk. None when no grid point
  qualifies (the reason says so): a higher tier or a human for everything.
- **threshold interval**: the grid thresholds whose *point estimate* of the rate is ≤
  the target, from the lowest such one to the chosen threshold: ``(lower, threshold)``.
  The lower end is where the labels alone, taken at face value, would put the threshold;
  the upper end is where the 95 % bound does. The gap is the price of having few labels:
  it narrows as labels accumulate (a deterministic interval, not a bootstrap, so the same
  labels always give the same answer).
- **confidently wrong rate** and **escalation rate** at the chosen threshold: the
  estimated rate of wrong actions let through, and the share of decisions below the
  threshold (sent to a higher tier or a human).
- With fewer than ``min_labels`` labels: ``enough`` is False, nothing is suggested, and the
  reason says how many more labels are needed (bins and ECE are still reported). Note that
  a bound needs labels too: with none wrong, the 95 % upper bound is ``z² / (n + z²)``, so
  a 2 % target can only be met from 189 labels on (:func:`labels_needed`); below that the
  reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z_95 = 1.96
"""The normal quantile of a two-sided 95 % interval, for :func:`wilson_upper`."""
GRID = tuple(round(0.50 + i / 100, 2) for i in range(50))
"""Candidate thresholds: 0.50, 0.51, …, 0.99."""


@dataclass(frozen=True)
class Label:
    confidence: float
    correct: bool


@dataclass(frozen=True)
class Bin:
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    count: int
    bins: tuple[Bin, ...]
    ece: float | None
    threshold: float | None
    threshold_interval: tuple[float, float] | None
    confidently_wrong_rate: float | None
    escalation_rate: float | None
    enough: bool
    reason: str


def calibrate(labels: Iterable[Label], target: float, bins: int = 10,
              min_labels: int = 50) -> Calibration:
    """The reliability bins, ECE and suggested threshold for ``labels`` (see the module)."""
    labelled = [Label(min(max(float(x.confidence), 0.0), 1.0), bool(x.correct))
                for x in labels]
    count = len(labelled)
    reliability = reliability_bins(labelled, bins)
    ece = expected_calibration_error(reliability, count)
    if count < min_labels:
        needed = min_labels - count
        return Calibration(count, reliability, ece, None, None, None, None, False,
                           f"{count} label{'s' if count != 1 else ''}: {needed} more needed "
                           f"before a threshold can be suggested (at least {min_labels}).")
    chosen = next((t for t in GRID if wilson_upper(_wrong_at(labelled, t), count) <= target),
                  None)
    if chosen is None:
        return Calibration(count, reliability, ece, None, None, None, None, True,
                           _why_none(labelled, target))
    lowest = next(t for t in GRID if _wrong_at(labelled, t) / count <= target)
    rate = _wrong_at(labelled, chosen) / count
    below = sum(x.confidence < chosen for x in labelled) / count
    return Calibration(
        count, reliability, ece, chosen, (lowest, chosen), rate, below, True,
        f"At {chosen:.2f}, {rate:.1%} of {count} labelled decisions were confident and "
        f"wrong (95 % upper bound {wilson_upper(_wrong_at(labelled, chosen), count):.1%} "
        f"≤ target {target:.1%}); {below:.0%} would go to a higher tier or a human.")


def _why_none(labels: Sequence[Label], target: float) -> str:
    count, top = len(labels), GRID[-1]
    at_top = _wrong_at(labels, top)
    if at_top == 0 and target <= 0:
        return "A target of 0 % cannot be shown with any number of labels."
    if at_top == 0:
        return (f"None of {count} labelled decisions at {top:.2f} or above was wrong, but "
                f"{count} labels cannot show a rate surely under {target:.1%}: at least "
                f"{labels_needed(target)} labels are needed.")
    return (f"No threshold up to {top:.2f} keeps confidently wrong actions surely under "
            f"{target:.1%}: at {top:.2f}, {at_top} of {count} labelled decisions were "
            "confident and wrong. Send these decisions to a higher tier or a human.")


def labels_needed(target: float, z: float = Z_95) -> int:
    """Fewest labels whose 95 % upper bound can be ≤ ``target`` (with none wrong):
    ``z² / (n + z²) ≤ target``."""
    if target <= 0:
        raise ValueError("target must be positive")
    return math.ceil(z * z * (1 - target) / target)


def reliability_bins(labels: Sequence[Label], bins: int = 10) -> tuple[Bin, ...]:
    """Equal-width bins on [0, 1] holding at least one label, lowest first."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    members: list[list[Label]] = [[] for _ in range(bins)]
    for label in labels:
        members[min(int(label.confidence * bins), bins - 1)].append(label)
    return tuple(
        Bin(lower=i / bins, upper=(i + 1) / bins, count=len(group),
            mean_confidence=sum(x.confidence for x in group) / len(group),
            accuracy=sum(x.correct for x in group) / len(group))
        for i, group in enumerate(members) if group
    )


def expected_calibration_error(bins: Sequence[Bin], count: int) -> float | None:
    """``Σ (n_b / n) |accuracy_b − confidence_b|``; None without labels."""
    if count == 0:
        return None
    return sum(b.count / count * abs(b.accuracy - b.mean_confidence) for b in bins)


def wilson_upper(successes: int, trials: int, z: float = Z_95) -> float:
    """Upper end of the Wilson score interval for a proportion (1.0 without trials)."""
    if trials <= 0:
        return 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return min(1.0, (centre + margin) / denominator)


def confidently_wrong(labels: Sequence[Label], threshold: float) -> float:
    """Share of ``labels`` at or above ``threshold`` and wrong (0 without labels)."""
    return _wrong_at(labels, threshold) / len(labels) if labels else 0.0


def _wrong_at(labels: Sequence[Label], threshold: float) -> int:
    # a hair of tolerance: 0.7 written by a model and 0.7 on the grid are the same number
    return sum(1 for x in labels if not x.correct and x.confidence >= threshold - 1e-9)
