"""Calibration per agent and tier: the reliability diagram, ECE, the suggested threshold, and
applying it to the policy in one click (team admins of the policy, or staff)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import calibrations, charts, thresholds
from ..errors import AppError, Forbidden
from ..forms import ThresholdForm


def charted(tiers: list[calibrations.TierCalibration]) -> list[dict]:
    """Each tier with its reliability diagram."""
    return [{"tc": tc, "chart": charts.reliability_diagram(
        tc.calibration.bins, suggested=tc.suggestion,
        current=tc.policy.confidence_threshold,
        label=f"Reliability diagram: accuracy per confidence bin, {tc.agent.slug} "
              f"{tc.tier} tier")} for tc in tiers]


@login_required
def calibration_page(request: HttpRequest) -> HttpResponse:
    return render(request, "runs/calibration.html", {
        "tiers": charted(calibrations.for_user(request.user)),
        "min_labels": calibrations.MIN_LABELS,
    })


@login_required
@require_POST
def apply_threshold(request: HttpRequest) -> HttpResponse:
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That threshold could not be read; reload the page.")
        return redirect("calibration")
    data = form.cleaned_data
    try:
        applied = thresholds.apply_suggested(user=request.user, agent_id=data["agent"],
                                             tier=data["tier"], seen=data["threshold"])
    except Forbidden as exc:  # not an admin of the policy's team: the 403 page says so
        raise PermissionDenied(exc.message) from None
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("calibration")
    messages.success(request, f"{applied.policy.name}: confidence threshold "
                              f"{applied.before:.2f} → {applied.after:.2f}. Runs started from "
                              "now on use it; running runs keep theirs.")
    return redirect("calibration")
