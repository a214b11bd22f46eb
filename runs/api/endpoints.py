"""The endpoints: a scope (auth), a scoped read, a service call, a representation."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Header, Query, Router, Status

from .. import agent_specs, assignment, errors, services
from ..models import Escalation
from ..representations import escalation_out, run_out
from . import selectors
from .auth import READ, RESOLVE, SUBMIT
from .pagination import paginate
from .schemas import (
    AgentList,
    AssignIn,
    ErrorOut,
    EscalationOut,
    EscalationPage,
    ResolveIn,
    ResolveOut,
    RunDetailOut,
    RunIn,
    RunOut,
    RunPage,
    RunStatusName,
)

router = Router()
COMMON = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut}
READS = {**COMMON, 400: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITES = {**READS, 409: ErrorOut, 413: ErrorOut}
Limit = Query(20, ge=1, le=100, description="Page size (1–100).")


@router.post("/runs", auth=SUBMIT, response={200: RunOut, 201: RunOut, **WRITES},
             summary="Submit a run", tags=["runs"])
def submit_run(request: HttpRequest, payload: RunIn,
               idempotency_header: str | None = Header(None, alias="Idempotency-Key")):
    """Queue a run of ``agent`` on ``input`` (checked against the agent's input schema).

    With an idempotency key (body or ``Idempotency-Key`` header) a retry returns the same
    run with 200; the same key with a different body is a 409.
    """
    key = request.auth
    idem = payload.idempotency_key or (idempotency_header or "").strip()
    if payload.idempotency_key and idempotency_header and idempotency_header != idem:
        raise errors.RequestInvalid("The body and the header name different idempotency keys.",
                                    {"idempotency_key": ["Differs from the header."]})
    if len(idem) > 200:
        raise errors.RequestInvalid("The idempotency key is too long.",
                                    {"idempotency_key": ["At most 200 characters."]})
    run = services.submit_run(
        team=key.team, agent_slug=payload.agent, task_input=payload.input, user_id=None,
        idempotency_key=idem, callback_url=payload.callback_url or "", api_key_id=key.pk,
    )
    return Status(200 if run.replayed else 201, run_out(run))


@router.get("/runs", auth=READ, response={200: RunPage, **READS}, summary="List runs",
            tags=["runs"])
def list_runs(request: HttpRequest, status: RunStatusName | None = None,
              agent: str | None = Query(None, max_length=50), cursor: str | None = None,
              limit: int = Limit):
    runs = selectors.runs_for(request.auth)
    if status:
        runs = runs.filter(status=status)
    if agent:
        runs = runs.filter(agent__slug=agent)
    rows, next_cursor = paginate(runs, cursor, limit)
    return {"items": [run_out(r) for r in rows], "next_cursor": next_cursor}


@router.get("/runs/{int:run_id}", auth=READ, response={200: RunDetailOut, **READS},
            summary="Get a run", tags=["runs"])
def get_run(request: HttpRequest, run_id: int, include: Literal["steps"] | None = None):
    """The run; ``?include=steps`` adds its trace (every step, in order)."""
    run = selectors.run_for(request.auth, run_id)
    steps = list(run.steps.order_by("index")) if include == "steps" else None
    return run_out(run, steps)


@router.post("/runs/{int:run_id}/cancel", auth=SUBMIT, response={200: RunOut, **WRITES},
             summary="Cancel a run", tags=["runs"])
def cancel_run(request: HttpRequest, run_id: int):
    """Abort a run that has not ended (``aborted`` / ``aborted_by_operator``). A running run
    stops at its next checkpoint; its open escalation is closed. 409 once it has ended."""
    run = selectors.run_for(request.auth, run_id)
    services.cancel_run(run_id=run.pk, api_key_id=request.auth.pk)
    return run_out(selectors.run_for(request.auth, run_id))


@router.get("/escalations", auth=READ, response={200: EscalationPage, **READS},
            summary="List open escalations", tags=["escalations"])
def list_escalations(request: HttpRequest, cursor: str | None = None, limit: int = Limit):
    open_ones = selectors.escalations_for(request.auth).filter(status=Escalation.Status.OPEN)
    rows, next_cursor = paginate(open_ones, cursor, limit)
    return {"items": [escalation_out(e) for e in rows], "next_cursor": next_cursor}


@router.post("/escalations/{int:escalation_id}/resolve", auth=RESOLVE,
             response={200: ResolveOut, **WRITES}, summary="Decide an escalation",
             tags=["escalations"])
def resolve_escalation(request: HttpRequest, escalation_id: int, payload: ResolveIn):
    """Record a decision once. A second decision is a 409 naming who decided first."""
    esc = selectors.escalation_for(request.auth, escalation_id)
    edited = "args" in payload.model_fields_set  # an explicit null is refused, not ignored
    outcome = services.decide(
        escalation_id=esc.pk, user=None, decision=payload.action, message=payload.message,
        args=payload.args if edited else services.NO_EDIT, budget=payload.budget,
        result=payload.result, api_key_id=request.auth.pk,
    )
    run = selectors.run_for(request.auth, outcome.run.pk)
    return {"escalation": escalation_out(selectors.escalation_for(request.auth, esc.pk)),
            "run": run_out(run)}


@router.post("/escalations/{int:escalation_id}/assign", auth=RESOLVE,
             response={200: EscalationOut, **WRITES}, summary="Assign an escalation",
             tags=["escalations"])
def assign_escalation(request: HttpRequest, escalation_id: int, payload: AssignIn):
    """Assign an open escalation to a member of its team (``user``: a username), or take the
    assignment away (``user``: null). Audited. 422 for a user outside the team, 409 once the
    escalation is closed."""
    esc = selectors.escalation_for(request.auth, escalation_id)
    assignee = None if payload.user is None else assignment.member_id(esc.team_id,
                                                                      payload.user)
    assignment.assign(escalation_id=esc.pk, assignee_id=assignee, api_key_id=request.auth.pk)
    return escalation_out(selectors.escalation_for(request.auth, esc.pk))


@router.get("/agents", auth=READ, response={200: AgentList, **COMMON}, summary="List agents",
            tags=["agents"])
def list_agents(request: HttpRequest):
    """The team's agents, each with the JSON schema its ``input`` must match."""
    items = []
    for agent in selectors.agents_for(request.auth):
        spec = agent_specs.spec_for(agent)
        schema = spec.input_json_schema() if spec else agent.input_schema
        items.append({"slug": agent.slug, "name": agent.name, "input_schema": schema or {}})
    return {"items": items}
