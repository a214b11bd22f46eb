"""A team's cap on runs running at once (``Team.max_running_runs``).

A queued run of a capped team starts only while its team has a free slot; when one of the
team's runs stops running (pause, end, cancel), its oldest queued runs are handed to the
workers. Uncapped teams' runs were enqueued on submit and never wait here.
"""

from __future__ import annotations

from agentdesk.runtime.outcomes import RunStatus

from . import enqueue, statements
from .models import Run, Team


def has_capacity(run: Run) -> bool:
    """May this run start now? Call inside the transaction that starts it, with the run
    as read there (``lifecycle.start``).

    Only a QUEUED run of a capped team is checked: a RUNNING one already holds its slot.
    The team row is locked (SELECT … FOR UPDATE; SQLite's write transactions are serial
    anyway) so two workers cannot both see the last free slot.
    """
    cap = run.team.max_running_runs
    if run.status != RunStatus.QUEUED or not cap:
        return True
    list(Team.objects.select_for_update().filter(pk=run.team_id).values_list("pk"))
    running = Run.objects.filter(team_id=run.team_id, status=RunStatus.RUNNING).count()
    return running < cap


def start_queued_runs(team_id: int) -> int:
    """A run of ``team_id`` stopped running: enqueue its oldest queued runs, as many as it
    has free slots. Returns how many were enqueued."""
    cap = statements.value_of(Team, "max_running_runs", team_id)  # after every run's end
    if not cap:
        return 0
    running = Run.objects.filter(team_id=team_id, status=RunStatus.RUNNING).count()
    free = max(0, cap - running)
    ids = list(
        Run.objects.filter(team_id=team_id, status=RunStatus.QUEUED, lease_owner="")
        .order_by("created_at", "pk").values_list("pk", flat=True)[:free]
    )
    for queued_id in ids:
        enqueue.advance_run(queued_id)
    return len(ids)
