"""Advancing one run on a worker: take the lease, run the engine for a slice, let go.

The lease (``lease_owner`` + ``lease_expires_at``, taken by ``lifecycle.start``) is a
conditional UPDATE, so two workers handed the same run (a redelivered message, the reaper)
never advance it at the same time; every checkpoint extends it, and a crashed worker's
lease simply expires.
"""

from __future__ import annotations

import threading
import uuid

import structlog
from django.conf import settings
from django.db import DatabaseError

from agentdesk.runtime.gateway import OpenAIGateway
from agentdesk.runtime.llm import ModelClient
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import RunStatus
from agentdesk.runtime.ports import LeaseLost
from agentdesk.runtime.state import StepRecord

from . import agent_specs, budgets, checkpoints, lifecycle
from .adapters import DjangoRunStore
from .breakers import breaker_store
from .budgets import DjangoTeamBudget
from .connections import ConnectionFreeModel
from .knowledge import knowledge_for
from .response_cache import DjangoResponseCache
from .tracing import traced

log = structlog.get_logger(__name__)
DONE = "done"
MORE_WORK = "more_work"


_gateways: dict[tuple[str | None, str], ModelClient] = {}
_gateways_lock = threading.Lock()


def gateway(base_url: str | None, api_key: str) -> ModelClient:
    """One HTTP client per worker process: connections are pooled across runs. While it
    waits on the model, the thread holds no database connection (``runs.connections``).

    Built once, under a lock: a thread-pool worker starting with a full queue had each of
    its 100 threads build a client at once (an SSL context each: 18 % of its CPU in its
    first seconds, py-spy), which ``functools.cache`` lets happen. ``gateway.cache_clear()``
    drops the clients (tests that change the endpoint settings)."""
    key = (base_url, api_key)
    client = _gateways.get(key)
    if client is None:
        with _gateways_lock:
            client = _gateways.get(key)
            if client is None:
                client = _gateways[key] = ConnectionFreeModel(traced(OpenAIGateway(
                    base_url=base_url, api_key=api_key, timeout=settings.LLM_TIMEOUT_SECONDS,
                    max_retries=settings.LLM_MAX_RETRIES,
                )))  # traced: spans only with OpenTelemetry on; no DB connection held
    return client


gateway.cache_clear = _gateways.clear  # type: ignore[attr-defined]


def advance(run_id: int) -> str:
    """Advance a run for one time slice. Returns MORE_WORK when it should be re-enqueued."""
    owner = uuid.uuid4().hex
    run = lifecycle.start(run_id, owner)
    if run is None:
        return DONE  # finished, waiting for a human, or another worker holds it
    agent_specs.refresh_sources(run.agent)
    spec = agent_specs.spec_for(run.agent)
    if spec is None:  # its package was removed (or the setting changed) after it was queued
        log.warning("agent not installed; failing the run", run_id=run_id, agent=run.agent.slug)
        lifecycle.agent_missing(run_id, owner, run.agent.slug)
        return DONE
    state, written = checkpoints.load(run)
    team_budget = DjangoTeamBudget(run.team_id, run.pk, owner, agent_id=run.agent_id)
    store = DjangoRunStore(run, owner, written, team_budget)
    structlog.contextvars.bind_contextvars(run_id=run_id, team=run.team.slug,
                                           agent=run.agent.slug)
    cache = DjangoResponseCache(run.team_id)
    engine = Engine(
        agent=spec,
        policy=run.policy,
        model=gateway(settings.LLM_BASE_URL, settings.LLM_API_KEY),
        store=store,
        team_budget=team_budget,
        cache=cache,
        on_step=log_step,
        breaker=breaker_store(),
        knowledge=knowledge_for(run.agent, spec.knowledge_dir),
    )
    try:
        state = engine.advance(state, slice_seconds=settings.RUN_SLICE_SECONDS)
    except LeaseLost:  # cancelled (which freed its slot), or another worker took over
        log.warning("lease lost; another owner continues")
        return DONE
    except DatabaseError:
        raise  # the database may be back soon: the lease expires and the reaper retries
    except Exception as exc:
        # A bug must end the run in a named state, not leave it for the reaper forever.
        log.exception("run crashed; marking it failed")
        lifecycle.crash(run_id, owner, exc)  # gives the holds back
        budgets.settle(team_budget.take(), held=False)  # calls it made were billed all the same
        return DONE
    finally:
        _flush(cache)
        structlog.contextvars.unbind_contextvars("run_id", "team", "agent")
    if state.status == RunStatus.RUNNING:
        lifecycle.release(run_id, owner)
        return MORE_WORK
    log.info("run paused or ended", run_id=run_id, status=state.status.value,
             reason=state.reason.value, steps=state.step_count)
    return DONE


def _flush(cache: DjangoResponseCache) -> None:
    """Store the slice's last reply; a cache that cannot is a miss later, not a failure."""
    try:
        cache.flush()
    except Exception as exc:  # Redis down: the run's own state is in the database
        log.warning("response cache not written", error=str(exc))


def log_step(step: StepRecord) -> None:
    log.info(
        "step", step=step.index, kind=step.kind.value, name=step.name, tier=step.args.get("tier"),
        tokens_in=step.usage.tokens_in, tokens_out=step.usage.tokens_out,
        cost_usd=str(step.usage.cost_usd), latency_ms=step.latency_ms, error=step.error or None,
    )
