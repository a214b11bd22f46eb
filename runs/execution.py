"""Advancing one run on a worker: take the lease, run the engine for a slice, let go.

The lease (``lease_owner`` + ``lease_expires_at``) is taken with a conditional UPDATE, so
two workers handed the same run (a redelivered message, the reaper) never advance it at
the same time; every checkpoint extends it, and a crashed worker's lease simply expires.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from agentdesk.agents import get_agent
from agentdesk.runtime.llm import OpenAIGateway
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus
from agentdesk.runtime.ports import LeaseLost
from agentdesk.runtime.state import PolicySnapshot, RunState

from .adapters import DjangoRunStore
from .budgets import DjangoTeamBudget
from .models import Run
from .response_cache import DjangoResponseCache

log = logging.getLogger(__name__)
DONE = "done"
MORE_WORK = "more_work"


@cache
def gateway(base_url: str | None, api_key: str) -> OpenAIGateway:
    """One HTTP client per worker process: connections are pooled across runs."""
    return OpenAIGateway(
        base_url=base_url, api_key=api_key, timeout=settings.LLM_TIMEOUT_SECONDS,
        max_retries=settings.LLM_MAX_RETRIES,
    )


def take_lease(run_id: int, owner: str) -> Run | None:
    now = timezone.now()
    taken = (
        Run.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .filter(Q(lease_owner="") | Q(lease_expires_at__lt=now) | Q(lease_expires_at=None))
        .update(
            lease_owner=owner, status=RunStatus.RUNNING,
            lease_expires_at=now + timedelta(seconds=settings.RUN_LEASE_SECONDS),
        )
    )
    if not taken:
        return None
    return Run.objects.select_related("agent", "team").get(pk=run_id)


def release_lease(run_id: int, owner: str) -> None:
    Run.objects.filter(pk=run_id, lease_owner=owner).update(lease_owner="",
                                                            lease_expires_at=None)


def advance(run_id: int) -> str:
    """Advance a run for one time slice. Returns MORE_WORK when it should be re-enqueued."""
    owner = uuid.uuid4().hex
    run = take_lease(run_id, owner)
    if run is None:
        return DONE  # finished, waiting for a human, or another worker holds it
    spec = get_agent(run.agent.slug)
    state = RunState.model_validate(run.state)
    store = DjangoRunStore(run, owner)
    if spec is None:
        state.status, state.reason = RunStatus.FAILED, Reason.TOOL_FAILED
        store.commit(state)
        return DONE
    engine = Engine(
        agent=spec,
        policy=PolicySnapshot.model_validate(run.policy_snapshot),
        model=gateway(settings.LLM_BASE_URL, settings.LLM_API_KEY),
        store=store,
        team_budget=DjangoTeamBudget(run.team_id),
        cache=DjangoResponseCache(),
    )
    try:
        state = engine.advance(state, slice_seconds=settings.RUN_SLICE_SECONDS)
    except LeaseLost:
        log.warning("lease lost on run %s; another owner continues", run_id)
        return DONE
    if state.status == RunStatus.RUNNING:
        release_lease(run_id, owner)
        return MORE_WORK
    return DONE
