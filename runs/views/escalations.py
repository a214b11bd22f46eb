"""One escalation: the page, deciding it, and claiming it. Every action answers htmx with a
fragment and a plain form post with a redirect (the page works without JavaScript)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from agentdesk.runtime.outcomes import BOUND_REASONS, Reason
from agentdesk.runtime.proposals import FINAL_ANSWER

from .. import agent_specs, assignment, budgets, claims, selectors, services
from ..errors import AppError
from ..forms import DecisionForm, InboxFilterForm
from ..permissions import Action
from ..templatetags.inbox import rows_html
from .access import require


@login_required
def escalation_detail(request: HttpRequest, escalation_id: int) -> HttpResponse:
    esc = selectors.escalation_for(request.user, escalation_id)
    assignment.touch(request.user)
    filters = InboxFilterForm(request.GET).filters()
    previous, following = selectors.inbox_neighbours(request.user, esc, filters)
    qs = filters.querystring()
    context = {**escalation_context(esc, user=request.user), "previous_id": previous,
               "next_id": following, "qs": qs}
    return render(request, "runs/escalation_detail.html", context)


def escalation_context(esc, posted=None, user=None) -> dict:
    """What the escalation page and its fragments show. ``posted`` is a refused decision's
    form data, shown again so nothing typed is lost. A ``team_budget`` escalation shows the
    team's day (``team_day``) and whether ``user`` may raise it (a team admin)."""
    run = esc.run
    tool = proposed_tool(esc)
    team_bound = esc.reason == Reason.TEAM_BUDGET
    return {
        "esc": esc, "run": run, "steps": selectors.steps_of(run), "form": DecisionForm(),
        "bound_reasons": BOUND_REASONS, "claim_timeout": claims.timeout_seconds(),
        "assignable": assignment.members(esc.team_id),
        "editable": tool is not None,
        # approve exists only when something is proposed (services.decide refuses it too),
        # or to go on once an admin has priced the model the run stopped for
        "approvable": bool(esc.proposed_tool) or esc.reason == Reason.MODEL_UNPRICED,
        "unpriced": esc.reason == Reason.MODEL_UNPRICED,
        # approving a side effect (a refund…) cannot be taken back: the page asks first
        "approve_irreversible": tool is not None and tool.side_effect,
        "args_json": json.dumps(esc.proposed_args, indent=2, sort_keys=True),
        "posted": posted or {},
        "team_day": budgets.today(run.team) if team_bound else None,
        "may_extend_team": team_bound and budgets.may_extend(user, esc.team_id),
    }


def proposed_tool(esc):
    """The agent's tool the escalation proposes to call, if any (not a final answer)."""
    if not esc.proposed_tool or esc.proposed_tool == FINAL_ANSWER:
        return None
    spec = agent_specs.spec_for(esc.run.agent)
    return spec.tools.get(esc.proposed_tool) if spec else None


@login_required
@require_POST
def escalation_decide(request: HttpRequest, escalation_id: int) -> HttpResponse:
    esc = selectors.escalation_for(request.user, escalation_id)
    require(request.user, Action.DECIDE, esc.team_id)
    form = DecisionForm(request.POST)
    error, fields, status = "", {}, 200
    if not form.is_valid():
        error, status = form.first_error(), 400
        fields = {k: [str(e) for e in v] for k, v in form.errors.items()}
    else:
        try:
            services.decide(escalation_id=esc.pk, user=request.user, **form.decision_kwargs())
        except AppError as exc:
            error, fields, status = exc.message, exc.fields, exc.status
    esc = selectors.escalation_for(request.user, esc.pk)
    if request.htmx:
        posted = request.POST if error else None
        ctx = {**escalation_context(esc, posted, request.user), "error": error,
               "field_errors": fields}
        return render(request, "runs/escalation_detail.html#decision-status", ctx,
                      status=status)
    if error:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items())
        messages.error(request, f"{error} {details}".strip())
    else:
        messages.success(request, f"Decision recorded: {esc.decision}.")
    return redirect("escalation_detail", escalation_id=esc.pk)


@login_required
@require_http_methods(["GET", "POST"])
def escalation_claim(request: HttpRequest, escalation_id: int) -> HttpResponse:
    """GET: the claim box (pages re-fetch it when a claim changes). POST: claim it, renew
    one's own claim, or take over a stale one."""
    esc = selectors.escalation_for(request.user, escalation_id)
    if request.method == "GET":
        return render(request, "runs/escalation_detail.html#claim-box",
                      escalation_context(esc, user=request.user))
    require(request.user, Action.CLAIM, esc.team_id)
    return _claim_action(request, esc, claims.claim)


@login_required
@require_POST
def escalation_release(request: HttpRequest, escalation_id: int) -> HttpResponse:
    esc = selectors.escalation_for(request.user, escalation_id)
    require(request.user, Action.CLAIM, esc.team_id)
    return _claim_action(request, esc, claims.release)


DONE = {"claimed": "Claimed #{id}.", "renewed": "You still hold #{id}.",
        "claim_taken_over": "Took over #{id} from {previous}.", "released": "Released #{id}."}


def _claim_action(request: HttpRequest, esc, action: Callable) -> HttpResponse:
    error, status, done = "", 200, ""
    try:
        outcome = action(escalation_id=esc.pk, user=request.user)
        done = DONE[outcome.action].format(id=esc.pk, previous=outcome.previous or "someone")
    except AppError as exc:
        error, status = exc.message, exc.status
    esc = selectors.escalation_for(request.user, esc.pk)
    if request.htmx:
        if request.POST.get("fragment") == "row":  # the inbox's row, in place
            return HttpResponse(rows_html(request, [esc], qs=request.POST.get("qs", ""),
                                          claim_error=error), status=status)
        context = {**escalation_context(esc, user=request.user), "claim_error": error,
                   "claim_done": done}
        return render(request, "runs/escalation_detail.html#claim-box", context,
                      status=status)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    target = request.POST.get("next", "")
    if not target and request.POST.get("fragment") == "row":  # an inbox row: back to the inbox
        qs = request.POST.get("qs", "")
        target = reverse("inbox") + (f"?{qs}" if qs else "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                           require_https=request.is_secure()):
        target = f"/escalations/{esc.pk}/"
    return redirect(target)
