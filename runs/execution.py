"""Advancing one run on a worker: take the lease, run the engine for a slice, let go.

The lease (``lease_owner`` + ``lease_expires_at``) is taken with a conditional UPDATE, so
two workers handed the same run (a redelivered message, the reaper) never advance it at
the same time; every checkpoint extends it, and a crashed worker's lease simply expires.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cache

import structlog
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from agentdesk.agents import get_agent
from agentdesk.runtime.llm import ModelClient, OpenAIGateway
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.ports import LeaseLost
from agentdesk.runtime.state import PolicySnapshot, RunState, StepRecord

from .adapters import DjangoRunStore
from .breakers import breaker_store
from .budgets import DjangoTeamBudget
from .models import Run, Step, Team
from .response_cache import DjangoResponseCache
from .tracing import traced

log = structlog.get_logger(__name__)
DONE = "done"
MORE_WORK = "more_work"


@cache
def gateway(base_url: str | None, api_key: str) -> ModelClient:
    """One HTTP client per worker process: connections are pooled across runs."""
    return traced(OpenAIGateway(  # traced: spans only when OpenTelemetry is configured
        base_url=base_url, api_key=api_key, timeout=settings.LLM_TIMEOUT_SECONDS,
        max_retries=settings.LLM_MAX_RETRIES,
    ))


def take_lease(run_id: int, owner: str) -> Run | None:
    now = timezone.now()
    with transaction.atomic():
        if not _has_capacity(run_id):
            return None  # stays queued; started when one of its team's runs stops
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


def _has_capacity(run_id: int) -> bool:
    """May this run start now under its team's ``max_running_runs``?

    Only a QUEUED run of a capped team is checked: a RUNNING one already holds its slot.
    The team row is locked (SELECT … FOR UPDATE; SQLite's write transactions are serial
    anyway) so two workers cannot both see the last free slot.
    """
    row = (Run.objects.filter(pk=run_id)
           .values("status", "team_id", "team__max_running_runs").first())
    if row is None or row["status"] != RunStatus.QUEUED or not row["team__max_running_runs"]:
        return True
    list(Team.objects.select_for_update().filter(pk=row["team_id"]).values_list("pk"))
    running = Run.objects.filter(team_id=row["team_id"], status=RunStatus.RUNNING).count()
    return running < row["team__max_running_runs"]


def start_queued_runs(team_id: int) -> int:
    """A run of ``team_id`` stopped running: enqueue its oldest queued runs, as many as it
    has free slots (only for a capped team; uncapped runs were enqueued on submit)."""
    from .tasks import advance_run

    cap = Team.objects.filter(pk=team_id).values_list("max_running_runs", flat=True).first()
    if not cap:
        return 0
    running = Run.objects.filter(team_id=team_id, status=RunStatus.RUNNING).count()
    free = max(0, cap - running)
    ids = list(
        Run.objects.filter(team_id=team_id, status=RunStatus.QUEUED, lease_owner="")
        .order_by("created_at", "pk").values_list("pk", flat=True)[:free]
    )
    for queued_id in ids:
        advance_run.delay(queued_id)
    return len(ids)


def release_lease(run_id: int, owner: str) -> None:
    Run.objects.filter(pk=run_id, lease_owner=owner).update(lease_owner="",
                                                            lease_expires_at=None)


def initial_state(run: Run) -> RunState:
    """The state of a run before its first step. Submitting writes none (one INSERT, not
    an INSERT and an UPDATE per run): it follows from the run's own columns."""
    return RunState(run_id=str(run.pk), agent=run.agent.slug, input=run.input)


def advance(run_id: int) -> str:
    """Advance a run for one time slice. Returns MORE_WORK when it should be re-enqueued."""
    owner = uuid.uuid4().hex
    run = take_lease(run_id, owner)
    if run is None:
        return DONE  # finished, waiting for a human, or another worker holds it
    spec = get_agent(run.agent.slug)
    state = RunState.model_validate(run.state) if run.state else initial_state(run)
    store = DjangoRunStore(run, owner)
    if spec is None:
        state.status, state.reason = RunStatus.FAILED, Reason.TOOL_FAILED
        store.commit(state)
        start_queued_runs(run.team_id)
        return DONE
    structlog.contextvars.bind_contextvars(run_id=run_id, team=run.team.slug,
                                           agent=run.agent.slug)
    engine = Engine(
        agent=spec,
        policy=PolicySnapshot.model_validate(run.policy_snapshot),
        model=gateway(settings.LLM_BASE_URL, settings.LLM_API_KEY),
        store=store,
        team_budget=DjangoTeamBudget(run.team_id),
        cache=DjangoResponseCache(),
        on_step=log_step,
        breaker=breaker_store(),
    )
    try:
        state = engine.advance(state, slice_seconds=settings.RUN_SLICE_SECONDS)
    except LeaseLost:
        log.warning("lease lost; another owner continues")
        start_queued_runs(run.team_id)  # e.g. cancelled: its slot is free
        return DONE
    except DatabaseError:
        raise  # the database may be back soon: the lease expires and the reaper retries
    except Exception as exc:
        # A bug must end the run in a named state, not leave it for the reaper forever.
        log.exception("run crashed; marking it failed")
        fail_crashed(run, owner, state.step_count, exc)
        start_queued_runs(run.team_id)
        return DONE
    finally:
        structlog.contextvars.unbind_contextvars("run_id", "team", "agent")
    if state.status == RunStatus.RUNNING:
        release_lease(run_id, owner)
        return MORE_WORK
    log.info("run paused or ended", run_id=run_id, status=state.status.value,
             reason=state.reason.value, steps=state.step_count)
    start_queued_runs(run.team_id)
    return DONE


def fail_crashed(run: Run, owner: str, index: int, exc: Exception) -> None:
    now = timezone.now()
    with transaction.atomic():
        current = Run.objects.filter(pk=run.pk, lease_owner=owner,
                                     status=RunStatus.RUNNING).values("step_count").first()
        if current is None:
            return
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, reason=Reason.INTERNAL_ERROR, finished_at=now,
            updated_at=now, lease_owner="", lease_expires_at=None,
            step_count=current["step_count"] + 1,
        )
        Step.objects.create(run=run, index=current["step_count"], kind=StepKind.FINAL,
                            name=RunStatus.FAILED.value,
                            error=f"internal error: {type(exc).__name__}: {exc}"[:2000])


def log_step(step: StepRecord) -> None:
    log.info(
        "step", step=step.index, kind=step.kind.value, name=step.name, tier=step.args.get("tier"),
        tokens_in=step.usage.tokens_in, tokens_out=step.usage.tokens_out,
        cost_usd=str(step.usage.cost_usd), latency_ms=step.latency_ms, error=step.error or None,
    )
