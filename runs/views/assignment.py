"""Assigning an escalation from its page (``runs.assignment`` does the work). htmx gets the
assignment box back; a plain form post a redirect with a message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import assignment, selectors
from ..errors import AppError
from ..permissions import Action
from .access import require

BOX = "runs/assignment.html#assign-box"


def _user_id(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@login_required
@require_http_methods(["GET", "POST"])
def escalation_assign(request: HttpRequest, escalation_id: int) -> HttpResponse:
    """GET: the assignment box (pages re-fetch it when the assignment changes). POST:
    assign (``assignee``: a user id, empty for nobody; ``assign_me``: oneself), guarded by
    ``expected``, the assignee the page showed."""
    esc = selectors.escalation_for(request.user, escalation_id)
    context = {"esc": esc, "assignable": assignment.members(esc.team_id)}
    if request.method == "GET":
        return render(request, BOX, context)
    require(request.user, Action.ASSIGN, esc.team_id)
    assignee = request.user.pk if request.POST.get("assign_me") \
        else _user_id(request.POST.get("assignee", ""))
    error, done, status = "", "", 200
    try:
        outcome = assignment.assign(escalation_id=esc.pk, assignee_id=assignee,
                                    user=request.user,
                                    expected=_user_id(request.POST.get("expected", "")))
        who = outcome.escalation.assigned_to
        done = {"unassigned": "Unassigned.", "unchanged": "No change."}.get(
            outcome.action, f"Assigned to {who.get_username() if who else 'nobody'}.")
    except AppError as exc:
        error, status = exc.message, exc.status
    esc = selectors.escalation_for(request.user, esc.pk)
    if request.htmx:
        return render(request, BOX, {**context, "esc": esc, "assign_error": error,
                                     "assign_done": done}, status=status)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect("escalation_detail", escalation_id=esc.pk)
