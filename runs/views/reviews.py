"""The review queue: confident runs no human saw, sampled for a verdict (Approve = the agent
was right, Flag = it was wrong). Each verdict is a calibration label."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import reviews, selectors
from ..errors import AppError
from ..forms import ReviewForm
from ..permissions import Action
from .access import require

DONE = {"approved": "Approved run #{run}: the agent was right.",
        "flagged": "Flagged run #{run}: the agent was wrong."}


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    return render(request, "runs/review.html", {
        "items": selectors.review_queue_for(request.user),
        "reviewed": selectors.reviewed_for(request.user),
    })


@login_required
@require_POST
def review_decide(request: HttpRequest, item_id: int) -> HttpResponse:
    item = selectors.review_item_for(request.user, item_id)
    require(request.user, Action.REVIEW, item.team_id)
    form = ReviewForm(request.POST)
    error, done, status = "", "", 200
    if not form.is_valid():
        error, status = "Choose Approve or Flag.", 400
    else:
        try:
            item = reviews.review(item_id=item.pk, user=request.user,
                                  verdict=form.cleaned_data["verdict"])
            done = DONE[item.status].format(run=item.run_id)
        except AppError as exc:
            error, status = exc.message, exc.status
    item = selectors.review_item_for(request.user, item.pk)
    if request.htmx:
        return render(request, "runs/review.html#review-item",
                      {"item": item, "error": error, "done": done}, status=status)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect("review_queue")
