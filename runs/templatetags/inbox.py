"""``{% inbox_rows page.items %}``: the inbox's rows, rendered by Jinja2.

A row is rendered 50 times on each inbox page and on every live refresh of it, so its cost
is what made a team with 10,000 open escalations wait longer than one with 10 (issue 16:
``inbox_scale_ratio``). The Django template language resolves each variable through a
chain of lookups; the same row compiled to Python by Jinja2 costs about a third. The rest
of the console stays in Django templates: nothing else renders a template per item.

``rows_html`` is the one way to render rows: the page's tag and a row's claim form's answer
(``runs.views.escalations``) both call it, so a row reads the same wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django import template
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template import engines
from django.utils.safestring import SafeString, mark_safe

from runs import claims

from .roles import permitted

register = template.Library()
ROWS = "runs/inbox_rows.html"


def rows_html(request: HttpRequest, rows: Iterable, *, qs: str = "",
              claim_error: str = "") -> SafeString:
    """The rows of ``rows`` (escalations with run, agent, team and claimant loaded) for the
    request's user; ``qs`` is the inbox's filter query, carried to each row's links."""
    user = request.user
    html = engines["jinja2"].get_template(ROWS).render({
        "rows": rows, "user": user, "qs": qs, "claim_error": claim_error,
        "claim_timeout": claims.timeout_seconds(),
        # one masked token for the page's forms, not a fresh mask for each row's
        "csrf_token": get_token(request),
        "may": partial(permitted, user, request.__dict__),
    })
    return mark_safe(html)  # nosec B308 B703  # Jinja2 escaped every value (autoescape)


@register.simple_tag(takes_context=True)
def inbox_rows(context: template.Context, rows: Iterable) -> SafeString:
    return rows_html(context["request"], rows, qs=context.get("qs", ""))
