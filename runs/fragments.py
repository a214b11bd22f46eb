"""Server-rendered fragments for live updates (htmx out-of-band swaps over websockets).

Each function returns the LiveEvents one change produces; the fragments come from the same
templates as the pages (``page.html#partial``), so a live row and a reloaded row are one.

The inbox is filtered, sorted and paginated per viewer, so a change is not pushed as a row
(it might not belong on that viewer's page): the team group gets a small signal, and each
inbox re-fetches its own list with its own filters (``hx-trigger`` on the socket message).
Rows are keyed by escalation id and the list is replaced whole, so nothing is duplicated.

A run's progress (every step) is rendered only while someone watches the run
(``runs.watchers``): most steps have no listener, and rendering was a millisecond of each.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from . import watchers
from .events import LiveEvent, run_group, team_group
from .models import Escalation, Run, Step


def run_progress(run: Run, step: Step | None) -> list[LiveEvent]:
    if not watchers.watched(run):
        return []
    group = run_group(run.pk)
    html = render_to_string("runs/run_detail.html#run-summary", {"run": run, "oob": True})
    if step is not None:
        html += render_to_string("runs/run_detail.html#step-append", {"step": step})
    return [LiveEvent(group=group, kind="run.progress", html=html)]


def inbox_changed(esc: Escalation, kind: str, extra_html: str = "") -> LiveEvent:
    """Tell every inbox of the team that its list changed (it re-fetches)."""
    html = render_to_string("runs/inbox.html#inbox-signal", {"esc": esc, "kind": kind})
    return LiveEvent(group=team_group(esc.team_id), kind=kind, html=html + extra_html)


def escalation_opened(esc: Escalation) -> list[LiveEvent]:
    return [inbox_changed(esc, "escalation.opened")]


def escalation_closed(esc: Escalation) -> list[LiveEvent]:
    row = render_to_string("runs/inbox.html#inbox-row-gone", {"esc": esc})
    status = render_to_string(
        "runs/escalation_detail.html#decision-status", {"esc": esc, "oob": True}
    )
    claim = render_to_string("runs/escalation_detail.html#claim-sync", {"esc": esc})
    assigned = render_to_string("runs/assignment.html#assign-sync", {"esc": esc})
    return [
        inbox_changed(esc, "escalation.closed", extra_html=row),
        LiveEvent(group=run_group(esc.run_id), kind="escalation.closed",
                  html=status + claim + assigned),
    ]


def claim_changed(esc: Escalation) -> list[LiveEvent]:
    """Claims differ per viewer (mine or theirs): pages re-fetch their claim box."""
    claim = render_to_string("runs/escalation_detail.html#claim-sync", {"esc": esc})
    return [
        inbox_changed(esc, "escalation.claimed"),
        LiveEvent(group=run_group(esc.run_id), kind="escalation.claimed", html=claim),
    ]


def assignment_changed(esc: Escalation) -> list[LiveEvent]:
    """Like claims, an assignment reads differently per viewer ("you"): pages re-fetch."""
    box = render_to_string("runs/assignment.html#assign-sync", {"esc": esc})
    return [
        inbox_changed(esc, "escalation.assigned"),
        LiveEvent(group=run_group(esc.run_id), kind="escalation.assigned", html=box),
    ]
