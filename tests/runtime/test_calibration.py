"""Calibration math: bins, ECE, the confidently wrong rate and the threshold it suggests."""

from __future__ import annotations

import random

import pytest

from agentdesk.runtime.calibration import (
    GRID,
    Label,
    calibrate,
    confidently_wrong,
    expected_calibration_error,
    reliability_bins,
    wilson_upper,
)


def labels(*groups: tuple[float, int, int]) -> list[Label]:
    """``(confidence, right, wrong)`` groups as labels."""
    out = []
    for confidence, right, wrong in groups:
        out += [Label(confidence, True)] * right + [Label(confidence, False)] * wrong
    return out


def test_too_few_labels_says_how_many_more_and_suggests_nothing():
    result = calibrate(labels((0.9, 30, 0)), target=0.02, min_labels=50)
    assert not result.enough and result.count == 30
    assert result.threshold is None and result.threshold_interval is None
    assert result.confidently_wrong_rate is None and result.escalation_rate is None
    assert "20 more needed" in result.reason
    assert result.ece == pytest.approx(0.1)  # bins and ECE are still reported
    empty = calibrate([], target=0.02)
    assert (empty.count, empty.bins, empty.ece, empty.enough) == (0, (), None, False)
    assert "50 more needed" in empty.reason


def test_bins_hold_mean_confidence_and_accuracy_and_ece_weights_them():
    data = labels((0.95, 9, 1), (0.55, 1, 1), (1.0, 2, 0), (0.0, 0, 1))
    bins = reliability_bins(data, bins=10)
    assert [(b.lower, b.upper, b.count) for b in bins] == [
        (0.0, 0.1, 1), (0.5, 0.6, 2), (0.9, 1.0, 12)]  # 1.0 falls in the last bin
    top = bins[-1]
    assert top.mean_confidence == pytest.approx((0.95 * 10 + 2) / 12)
    assert top.accuracy == pytest.approx(11 / 12)
    expected = (1 / 15) * 0.0 + (2 / 15) * abs(0.5 - 0.55) + (12 / 15) * abs(
        11 / 12 - top.mean_confidence)
    assert expected_calibration_error(bins, len(data)) == pytest.approx(expected)
    assert calibrate(data, 0.02, min_labels=1).ece == pytest.approx(expected)


def test_perfect_calibration_has_zero_ece():
    data = labels((0.75, 3, 1), (0.25, 1, 3))
    assert calibrate(data, 0.5, min_labels=1).ece == pytest.approx(0.0)


def test_confidently_wrong_counts_wrong_at_or_above_the_threshold_over_all_labels():
    data = labels((0.9, 6, 1), (0.7, 1, 1), (0.6, 0, 1))
    assert confidently_wrong(data, 0.9) == pytest.approx(1 / 10)
    assert confidently_wrong(data, 0.7) == pytest.approx(2 / 10)  # 0.7 itself counts
    assert confidently_wrong(data, 0.95) == 0.0
    assert confidently_wrong([], 0.5) == 0.0


def test_wilson_upper_bound():
    assert wilson_upper(0, 0) == 1.0
    assert wilson_upper(0, 100) == pytest.approx(0.0370, abs=1e-4)
    assert wilson_upper(5, 100) == pytest.approx(0.1118, abs=1e-4)
    assert wilson_upper(100, 100) == pytest.approx(1.0)


def test_threshold_is_the_lowest_whose_upper_bound_meets_the_target():
    # 400 sure and right at 0.95, 100 unsure at 0.6 of which 40 wrong, 2 wrong at 0.8
    data = labels((0.95, 400, 0), (0.8, 20, 2), (0.6, 60, 40))
    result = calibrate(data, target=0.02)
    # at 0.61–0.80 two wrong of 522 (0.38 %, bound 1.4 %) already meet the target
    assert result.enough and result.threshold == 0.61
    assert wilson_upper(2, 522) <= 0.02
    assert result.confidently_wrong_rate == pytest.approx(2 / 522)
    assert result.escalation_rate == pytest.approx(100 / 522)
    # at 0.60 itself 42 / 522 are confidently wrong: the point estimate fails too
    assert result.threshold_interval == (0.61, 0.61)


def test_the_interval_spans_point_estimate_to_upper_bound():
    # 1 wrong of 400 at 0.9: 0.25 % ≤ 1 % but its upper bound 1.4 % is not
    data = labels((0.97, 320, 0), (0.9, 19, 1), (0.6, 30, 30))
    result = calibrate(data, target=0.01)
    assert result.threshold == 0.91  # above the confident mistake
    assert result.threshold_interval == (0.61, 0.91)
    lower, upper = result.threshold_interval
    assert confidently_wrong(data, lower) <= 0.01 < wilson_upper(1, len(data))
    assert result.confidently_wrong_rate == 0.0
    assert result.escalation_rate == pytest.approx(80 / 400)


def test_no_threshold_when_even_the_top_of_the_grid_is_not_surely_under_target():
    data = labels((0.995, 90, 10))  # wrong even at 0.99
    result = calibrate(data, target=0.02)
    assert result.enough and result.threshold is None
    assert result.threshold_interval is None and "No threshold up to 0.99" in result.reason
    few = calibrate(labels((0.95, 60, 0)), target=0.02)  # right, but too few to be sure
    assert few.threshold is None and "at least 189 labels" in few.reason


def test_more_labels_narrow_the_interval():
    rng = random.Random(7)

    def draw(n: int) -> list[Label]:
        out = []
        for _ in range(n):
            c = rng.choice([0.55, 0.65, 0.75, 0.85, 0.95])
            out.append(Label(c, rng.random() < (c if c >= 0.8 else c - 0.3)))
        return out

    small, large = calibrate(draw(300), 0.05), calibrate(draw(3000), 0.05)
    assert small.threshold is not None and large.threshold is not None
    width = [r.threshold_interval[1] - r.threshold_interval[0] for r in (small, large)]
    assert width[1] <= width[0]


def test_grid_and_input_clamping():
    assert GRID[0] == 0.5 and GRID[-1] == 0.99 and len(GRID) == 50
    result = calibrate([Label(1.7, True)] * 300 + [Label(-1, False)] * 10, 0.02)
    assert result.bins[0].lower == 0.0 and result.bins[-1].upper == 1.0
    assert result.threshold == 0.5 and result.escalation_rate == pytest.approx(10 / 310)
