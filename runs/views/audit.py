"""The audit log of the user's teams: decisions, claims, cancels, API keys — newest first."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .. import selectors
from ..audit import ACTION_LABELS
from .paging import page_of


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("action", "")
    action = action if action in ACTION_LABELS else ""
    teams = list(selectors.teams_for(request.user).values_list("slug", "name"))
    team = request.GET.get("team", "")
    team = team if team in {slug for slug, _ in teams} else ""
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    events = selectors.audit_events_for(request.user, action=action, team=team)
    page = page_of(events, number, selectors.AUDIT_PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "runs/audit.html", {
        "page": page, "action": action, "team": team, "teams": teams,
        "actions": ACTION_LABELS, "qs": query.urlencode(),
    })
