"""Runs: the filterable list, one run's page (live timeline, usage, policy), cancelling."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..errors import AppError
from ..forms import RunFilterForm
from ..permissions import Action
from .access import require
from .paging import page_of


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    teams = list(selectors.teams_for(request.user).values_list("slug", "name"))
    agents = sorted(set(selectors.agents_for(request.user).values_list("slug", flat=True)))
    form = RunFilterForm(request.GET, teams=teams, agents=agents)
    filters = form.filters()
    page = page_of(selectors.run_rows(request.user, filters), form.page_number(),
                   selectors.RUNS_PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "qs": query.urlencode(),
               "filtered": any(v for k, v in request.GET.items() if k != "page"),
               "show_team": len(teams) > 1}
    partial = request.htmx and not request.htmx.boosted
    return render(request, "runs/run_list.html#run-results" if partial else "runs/run_list.html",
                  context)


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_for(request.user, run_id)
    return render(request, "runs/run_detail.html", {
        "run": run, "steps": selectors.steps_of(run),
        "escalations": selectors.run_escalations(run),
    })


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Abort the run (``aborted_by_operator``); its open escalations close as cancelled."""
    run = selectors.run_for(request.user, run_id)
    require(request.user, Action.CANCEL, run.team_id)
    error, status = "", 200
    try:
        services.cancel_run(run_id=run.pk, user=request.user)
    except AppError as exc:
        error, status = exc.message, exc.status
    run = selectors.run_for(request.user, run_id)
    if request.htmx:
        return render(request, "runs/run_detail.html#run-actions",
                      {"run": run, "cancel_error": error}, status=status)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Run #{run.pk} cancelled.")
    return redirect("run_detail", run_id=run.pk)
