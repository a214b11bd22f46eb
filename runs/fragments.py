"""Server-rendered fragments for live updates (htmx out-of-band swaps over websockets).

Each function returns the LiveEvents one change produces; the fragments come from the same
templates as the pages (``page.html#partial``), so a live row and a reloaded row are one.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from .events import LiveEvent, run_group, team_group
from .models import Escalation, Run, Step


def run_progress(run: Run, step: Step | None) -> list[LiveEvent]:
    html = render_to_string("runs/run_detail.html#run-summary", {"run": run, "oob": True})
    if step is not None:
        html += render_to_string("runs/run_detail.html#step-append", {"step": step})
    return [LiveEvent(group=run_group(run.pk), kind="run.progress", html=html)]


def escalation_opened(esc: Escalation) -> list[LiveEvent]:
    html = render_to_string("runs/inbox.html#inbox-row-oob", {"esc": esc})
    return [LiveEvent(group=team_group(esc.team_id), kind="escalation.opened", html=html)]


def escalation_closed(esc: Escalation) -> list[LiveEvent]:
    row = render_to_string("runs/inbox.html#inbox-row-gone", {"esc": esc})
    status = render_to_string(
        "runs/escalation_detail.html#decision-status", {"esc": esc, "oob": True}
    )
    return [
        LiveEvent(group=team_group(esc.team_id), kind="escalation.closed", html=row),
        LiveEvent(group=run_group(esc.run_id), kind="escalation.closed", html=status),
    ]
