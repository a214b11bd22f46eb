"""The inbox: the open escalations of the user's teams, most urgent first, filtered; and
bulk triage of the ones an operator selects there (``runs.bulk`` does the work)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import assignment, bulk, claims, selectors
from ..errors import AppError
from ..forms import InboxFilterForm
from ..permissions import Action
from .access import require_somewhere
from .paging import page_of

# A plain form post (no JavaScript) is answered with a redirect; the results wait here for
# the inbox page that follows.
BULK_RESULT = "inbox_bulk_result"
# What each bulk action needs somewhere (each item is checked again by its writer).
BULK_NEEDS = {"claim": Action.CLAIM, "assign": Action.ASSIGN}


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    assignment.touch(request.user)  # an open inbox counts as active (round-robin)
    form = InboxFilterForm(request.GET)
    filters, number = form.filters(), form.page_number()
    scope = selectors.inbox_scope(request.user)  # the teams and agents, read once
    # counts stop at a cap ("1,000+"): the page costs the same at 10 or 10,000 open
    total, facets = selectors.inbox_counts(request.user, filters, scope, page=number)
    page = page_of(selectors.inbox_rows(request.user, filters, scope), number,
                   selectors.INBOX_PAGE_SIZE, total=total.n)
    qs = filters.querystring()
    context = {
        "filters": filters, "facets": {f.name: f for f in facets}, "page": page, "qs": qs,
        "total": total,
        "refresh_url": f"/inbox/?{qs}{'&' if qs else ''}page={page.number}",
        "claim_timeout": claims.timeout_seconds(),
    }
    if not request.htmx:  # the bulk bar and its results sit outside the refreshed list
        context["bulk"] = request.session.pop(BULK_RESULT, None)
        context["assignable"] = bulk.assignable_for(request.user)
    partial = request.htmx and not request.htmx.boosted
    template = "runs/inbox.html#inbox-results" if partial else "runs/inbox.html"
    return render(request, template, context)


@login_required
@require_POST
def inbox_bulk(request: HttpRequest) -> HttpResponse:
    """Approve, reject, claim or assign the selected escalations; the answer lists each."""
    require_somewhere(request.user, BULK_NEEDS.get(request.POST.get("action", ""),
                                                   Action.DECIDE))
    status = 200
    try:
        result = bulk.apply(user=request.user, action=request.POST.get("action", ""),
                            escalation_ids=request.POST.getlist("ids"),
                            message=request.POST.get("message", ""),
                            assignee=request.POST.get("assignee", "")).as_dict()
    except AppError as exc:  # nothing was done: say why (no selection, unknown action…)
        result, status = {"error": exc.message}, exc.status
    if request.htmx:
        return render(request, "runs/inbox.html#bulk-results", {"bulk": result},
                      status=status)
    request.session[BULK_RESULT] = result
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("inbox")
    return redirect(target)
