"""The inbox: the open escalations of the user's teams, most urgent first, filtered."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .. import claims, selectors
from ..forms import InboxFilterForm
from .paging import page_of


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    form = InboxFilterForm(request.GET)
    filters = form.filters()
    total, facets = selectors.inbox_counts(request.user, filters)
    page = page_of(selectors.inbox_rows(request.user, filters), form.page_number(),
                   selectors.INBOX_PAGE_SIZE, total=total)
    qs = filters.querystring()
    context = {
        "filters": filters, "facets": {f.name: f for f in facets}, "page": page, "qs": qs,
        "refresh_url": f"/inbox/?{qs}{'&' if qs else ''}page={page.number}",
        "claim_timeout": claims.timeout_seconds(),
    }
    partial = request.htmx and not request.htmx.boosted
    template = "runs/inbox.html#inbox-results" if partial else "runs/inbox.html"
    return render(request, template, context)
