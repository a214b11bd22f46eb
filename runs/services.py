"""Writes: submitting runs and deciding escalations. Each service is one transaction and
fires follow-up work only after commit, so a worker never sees a half-written run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from agentdesk.agents import get_agent
from agentdesk.runtime.outcomes import Decision, Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput, PolicySnapshot, RuleSpec, RunState
from agentdesk.runtime.state import ModelPrice as PriceRow

from . import callback_urls, fragments, webhooks
from .events import publish_on_commit
from .models import Agent, AuditEvent, Escalation, ModelPrice, Policy, Run, Step, Team


class ServiceError(Exception):
    """A request we refuse, with a message fit to show the user."""

    code = "invalid"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(ServiceError):
    code = "not_found"


class InputInvalid(ServiceError):
    code = "invalid_input"


class InputTooLarge(ServiceError):
    code = "too_large"


class AlreadyDecided(ServiceError):
    code = "already_decided"


class RunNotWaiting(ServiceError):
    code = "run_not_waiting"


class IdempotencyConflict(ServiceError):
    code = "idempotency_conflict"


class RunFinished(ServiceError):
    code = "run_finished"


class CallbackRefused(ServiceError):
    code = "invalid_callback_url"


def policy_snapshot(policy: Policy) -> PolicySnapshot:
    prices = {
        p.model: PriceRow(input=p.input_per_mtok, cached_input=p.cached_input_per_mtok,
                          output=p.output_per_mtok)
        for p in ModelPrice.objects.filter(model__in=[policy.small_model, policy.large_model])
    }
    return PolicySnapshot(
        max_steps=policy.max_steps, max_seconds=float(policy.max_seconds),
        max_tokens=policy.max_tokens, max_cost_usd=policy.max_cost_usd,
        confidence_threshold=policy.confidence_threshold,
        approval_amount_usd=policy.approval_amount_usd,
        approval_tools=list(policy.approval_tools or []),
        small_model=policy.small_model, large_model=policy.large_model,
        max_output_tokens=policy.max_output_tokens, prices=prices,
        on_bound=policy.on_bound, loop_repeat_limit=policy.loop_repeat_limit,
        no_progress_limit=policy.no_progress_limit, downgrade_after=policy.downgrade_after,
        cache_ttl_seconds=policy.cache_ttl_seconds,
        human_timeout_seconds=policy.human_timeout_seconds,
        human_timeout_action=policy.human_timeout_action,
        fallback_answer=policy.fallback_answer,
        rules=[RuleSpec.model_validate(r.as_spec_dict())
               for r in policy.rules.filter(enabled=True)],
    )


def validate_input(agent: Agent, task_input: Any) -> dict[str, Any]:
    size = len(json.dumps(task_input, default=str).encode())
    if size > settings.MAX_INPUT_BYTES:
        raise InputTooLarge(f"Input is {size} bytes; the limit is {settings.MAX_INPUT_BYTES}.")
    spec = get_agent(agent.slug)
    if spec is None:
        raise NotFound(f"Agent {agent.slug!r} has no implementation installed.")
    if not isinstance(task_input, dict):
        raise InputInvalid("Input must be a JSON object.")
    try:
        return spec.input_model.model_validate(task_input).model_dump()
    except PydanticValidationError as exc:
        fields: dict[str, list[str]] = {}
        for err in exc.errors(include_url=False):
            name = ".".join(str(p) for p in err["loc"]) or "input"
            fields.setdefault(name, []).append(err["msg"])
        raise InputInvalid("The input does not match the agent's schema.", fields) from None


def request_hash(agent_slug: str, task_input: Any, callback_url: str = "") -> str:
    """SHA-256 of the canonical JSON of what a submission asks for (idempotency check)."""
    body = {"agent": agent_slug, "input": task_input, "callback_url": callback_url or ""}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_run(
    *, team: Team, agent_slug: str, task_input: Any, user_id: int | None,
    idempotency_key: str = "", callback_url: str = "", api_key_id: int | None = None,
) -> Run:
    """Create a run and enqueue it. Raises NotFound/InputInvalid/InputTooLarge, and
    CallbackRefused for a callback URL webhooks must not go to (``runs.callback_urls``).

    With an ``idempotency_key`` a repeated submission returns the team's earlier run with
    that key (``run.replayed`` is then True) if it asked for the same thing, and raises
    IdempotencyConflict otherwise. Concurrent retries are settled by the database's unique
    constraint: the loser re-reads the winner's run.
    """
    digest = request_hash(agent_slug, task_input, callback_url) if idempotency_key else ""
    if idempotency_key:
        earlier = _replay(team, idempotency_key, digest)
        if earlier is not None:
            return earlier
    agent = (
        Agent.objects.select_related("policy")
        .filter(team=team, slug=agent_slug, enabled=True)
        .first()
    )
    if agent is None:
        raise NotFound(f"Unknown agent {agent_slug!r} for team {team.slug!r}.")
    clean = validate_input(agent, task_input)
    if callback_url:
        try:
            callback_urls.check(callback_url)
        except callback_urls.RefusedURL as exc:
            raise CallbackRefused(str(exc), {"callback_url": [str(exc)]}) from None
    snapshot = policy_snapshot(agent.policy)
    try:
        with transaction.atomic():
            # One INSERT: a run nobody has advanced has no checkpoint yet (``state`` {}); the
            # first worker starts it from its columns (``execution.initial_state``).
            run = Run.objects.create(
                team=team, agent=agent, created_by_id=user_id, input=clean,
                policy_snapshot=snapshot.model_dump(mode="json"), state={},
                idempotency_key=idempotency_key, request_hash=digest,
                callback_url=callback_url or "", api_key_id=api_key_id,
            )
            AuditEvent.objects.create(
                team=team, actor_id=user_id, api_key_id=api_key_id, action="run.submitted",
                target_type="run", target_id=str(run.pk),
                detail={"agent": agent.slug, "idempotency_key": idempotency_key},
            )
            _enqueue_on_commit(run.pk)
    except IntegrityError:
        earlier = _replay(team, idempotency_key, digest) if idempotency_key else None
        if earlier is None:
            raise
        return earlier
    run.replayed = False
    return run


def _replay(team: Team, idempotency_key: str, digest: str) -> Run | None:
    run = Run.objects.filter(team=team, idempotency_key=idempotency_key).first()
    if run is None:
        return None
    if run.request_hash != digest:
        raise IdempotencyConflict(
            f"Idempotency key {idempotency_key!r} was already used for run {run.pk} with a "
            "different request.", {"idempotency_key": ["Reused with a different body."]},
        )
    run.replayed = True
    return run


def cancel_run(*, run_id: int, user=None, api_key_id: int | None = None) -> Run:
    """Abort a run that has not ended (``aborted`` / ``aborted_by_operator``).

    The conditional UPDATE fences the worker: a running run's next checkpoint commit
    (``WHERE status = 'running'``) no longer matches, so it stops with LeaseLost. Open
    escalations of the run are closed as cancelled. Raises RunFinished when it had ended.
    """
    now = timezone.now()
    actor = user.get_username() if user is not None else _key_name(api_key_id)
    with transaction.atomic():
        moved = Run.objects.filter(
            pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_HUMAN]
        ).update(status=RunStatus.ABORTED, reason=Reason.ABORTED_BY_OPERATOR, finished_at=now,
                 updated_at=now, lease_owner="", lease_expires_at=None)
        run = Run.objects.select_related("team", "agent").get(pk=run_id)
        if not moved:
            raise RunFinished(f"Run {run.pk} is {run.status}; it can no longer be cancelled.")
        closed = list(Escalation.objects.filter(run=run, status=Escalation.Status.OPEN))
        Escalation.objects.filter(pk__in=[e.pk for e in closed]).update(
            status=Escalation.Status.CANCELLED, decided_at=now)
        Step.objects.create(run=run, index=run.step_count, kind=StepKind.HUMAN,
                            name=Decision.ABORT.value, args={"operator": actor})
        Run.objects.filter(pk=run.pk).update(step_count=run.step_count + 1)
        run.step_count += 1
        AuditEvent.objects.create(
            team_id=run.team_id, actor=user, api_key_id=api_key_id, action="run.cancelled",
            target_type="run", target_id=str(run.pk),
        )
        webhooks.record_status_change(run)
        for esc in closed:
            esc.status = Escalation.Status.CANCELLED
        publish_on_commit(
            lambda: sum((fragments.escalation_closed(e) for e in closed), [])
            + fragments.run_progress(run, None)
        )
        transaction.on_commit(lambda: start_queued_runs(run.team_id))
    return run


def start_queued_runs(team_id: int) -> None:
    """Capacity of a capped team freed up: hand its oldest queued runs to the workers."""
    from .execution import start_queued_runs as start

    start(team_id)


@dataclass(frozen=True)
class DecisionOutcome:
    escalation: Escalation
    run: Run


def decide(
    *,
    escalation_id: int,
    user,
    decision: str,
    api_key_id: int | None = None,
    message: str = "",
    args: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
) -> DecisionOutcome:
    """Record an operator's decision once; the loser of a race learns who won.

    The escalation is closed by a conditional UPDATE (``WHERE status = 'open'``), and the
    run is moved from ``waiting_human`` the same way, so a double click, a second operator
    or a decision on an aborted run can never resume a run twice. Through the API ``user``
    is None and ``api_key_id`` names the deciding key (audited, and told to a later loser).
    """
    try:
        choice = Decision(decision)
    except ValueError:
        raise ServiceError(f"Unknown decision {decision!r}.") from None
    message = (message or "").strip()
    if choice in (Decision.REPLY,) and not message:
        raise ServiceError("A reply needs a message for the agent.", {"message": ["Required."]})
    if choice == Decision.TAKE_OVER and not message and not result:
        raise ServiceError("Taking over needs the result to finish the run with.",
                           {"message": ["Required."]})
    if len(message) > 4000:
        raise ServiceError("The message is too long (4000 characters at most).")
    pending = Escalation.objects.select_related("run").filter(pk=escalation_id).first()
    if pending is None:
        raise NotFound("No such escalation.")
    if args is not None:
        if choice != Decision.APPROVE:
            raise ServiceError("Edited arguments go with approve.")
        args = validate_tool_args(pending, args)
    new_limits = limits_after_extension(pending.run, budget) \
        if choice == Decision.EXTEND_BUDGET else None
    now = timezone.now()
    from . import audit, claims  # claims builds on this module's errors

    with transaction.atomic():
        # Open, and not under someone else's live claim (claims.open_to): one UPDATE decides.
        won = Escalation.objects.filter(
            claims.open_to(user, now), pk=escalation_id, status=Escalation.Status.OPEN
        ).update(
            status=Escalation.Status.DECIDED, decision=choice.value, decision_message=message,
            decided_by=user, decided_at=now,
        )
        esc = Escalation.objects.select_related("run", "decided_by").get(pk=escalation_id)
        if not won:
            raise claims.refusal(esc, user) or _already_decided(esc)
        run = esc.run
        audit.record(
            team_id=esc.team_id, actor=user, api_key_id=api_key_id,
            action="escalation.decided", target=esc,
            detail={"decision": choice.value, "run_id": run.pk, "edited": args is not None,
                    "seconds_to_decision": round((now - esc.created_at).total_seconds(), 3),
                    "reason": esc.reason},
        )
        operator = user.get_username() if user is not None else _key_name(api_key_id)
        if new_limits is not None:
            Run.objects.filter(pk=run.pk).update(
                policy_snapshot={**run.policy_snapshot, **new_limits}
            )
        if choice == Decision.ABORT:
            _abort(run, operator, now)
        else:
            _resume_with(run, HumanInput(decision=choice.value, message=message,
                                         operator=operator, args=args, result=result))
        publish_on_commit(
            lambda: fragments.escalation_closed(esc) + fragments.run_progress(run, None)
        )
    return DecisionOutcome(escalation=esc, run=run)


LIMIT_FIELDS = {"max_steps": int, "max_seconds": float, "max_tokens": int,
                "max_cost_usd": Decimal}


def limits_after_extension(run: Run, budget: dict[str, Any] | None) -> dict[str, Any]:
    """New limits for a run an operator extends: given ones, else double the one it hit."""
    snap = run.policy_snapshot
    if not budget:
        hit = {"step_limit": "max_steps", "time_limit": "max_seconds",
               "token_limit": "max_tokens", "cost_limit": "max_cost_usd",
               "team_budget": "max_cost_usd", "loop_detected": "max_steps"}.get(run.reason)
        budget = {hit: Decimal(str(snap[hit])) * 2} if hit else {}
    fields: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, value in budget.items():
        if name not in LIMIT_FIELDS:
            fields[name] = [f"Unknown limit; use one of {', '.join(LIMIT_FIELDS)}."]
            continue
        try:
            number = LIMIT_FIELDS[name](str(value)) if name == "max_cost_usd" \
                else LIMIT_FIELDS[name](float(value))
        except (ValueError, ArithmeticError, TypeError):
            fields[name] = ["Not a number."]
            continue
        if Decimal(str(number)) < Decimal(str(snap.get(name, 0))):
            fields[name] = [f"Cannot go below the current limit {snap.get(name)}."]
            continue
        clean[name] = str(number) if isinstance(number, Decimal) else number
    if fields:
        raise ServiceError("The new limits are not valid.", fields)
    return clean


def validate_tool_args(esc: Escalation, args: Any) -> dict[str, Any]:
    """Edited arguments must fit the proposed tool's schema before they are accepted."""
    spec = get_agent(esc.run.agent.slug)
    tool = spec.tools.get(esc.proposed_tool) if spec else None
    if tool is None:
        raise ServiceError("This escalation proposes no tool call to edit.")
    if not isinstance(args, dict):
        raise InputInvalid("Arguments must be a JSON object.", {"args": ["Not an object."]})
    try:
        return tool.validate(args).model_dump(mode="json")
    except PydanticValidationError as exc:
        fields: dict[str, list[str]] = {}
        for err in exc.errors(include_url=False):
            fields.setdefault(".".join(str(p) for p in err["loc"]) or "args", []).append(
                err["msg"])
        raise InputInvalid(f"The arguments do not fit {tool.name}.", fields) from None


def _already_decided(esc: Escalation) -> ServiceError:
    if esc.status == Escalation.Status.CANCELLED:
        return RunNotWaiting("This escalation was closed because its run is no longer waiting.")
    who = esc.decided_by.get_username() if esc.decided_by else _decider_key(esc)
    when = timezone.localtime(esc.decided_at).strftime("%H:%M:%S") if esc.decided_at else ""
    return AlreadyDecided(f"Already decided by {who} ({esc.decision}) at {when}.")


def _key_name(api_key_id: int | None) -> str:
    from .models import ApiKey

    key = ApiKey.objects.filter(pk=api_key_id).first() if api_key_id else None
    return f"api-key:{key.name}" if key else "api-key"


def _decider_key(esc: Escalation) -> str:
    event = (AuditEvent.objects.filter(action="escalation.decided", target_type="escalation",
                                       target_id=str(esc.pk)).order_by("pk").first())
    return _key_name(event.api_key_id) if event and event.api_key_id else "someone"


def _resume_with(run: Run, human: HumanInput) -> None:
    state = RunState.model_validate(run.state)
    state.human_input = human
    state.status = RunStatus.QUEUED
    moved = Run.objects.filter(pk=run.pk, status=RunStatus.WAITING_HUMAN).update(
        status=RunStatus.QUEUED, reason="", state=state.model_dump(mode="json"),
        updated_at=timezone.now(),
    )
    if not moved:
        raise RunNotWaiting(f"Run {run.pk} is {run.status}; it is not waiting for a decision.")
    run.refresh_from_db()
    _enqueue_on_commit(run.pk)


def _abort(run: Run, operator: str, now) -> None:
    moved = Run.objects.filter(pk=run.pk, status=RunStatus.WAITING_HUMAN).update(
        status=RunStatus.ABORTED, reason=Reason.ABORTED_BY_OPERATOR, finished_at=now,
        updated_at=now, lease_owner="",
    )
    if not moved:
        raise RunNotWaiting(f"Run {run.pk} is {run.status}; it cannot be aborted now.")
    run.refresh_from_db()
    Step.objects.create(
        run=run, index=run.step_count, kind=StepKind.HUMAN, name=Decision.ABORT.value,
        args={"operator": operator},
    )
    Run.objects.filter(pk=run.pk).update(step_count=run.step_count + 1)
    run.step_count += 1
    webhooks.record_status_change(run)


def _enqueue_on_commit(run_id: int) -> None:
    from .tasks import advance_run

    transaction.on_commit(lambda: advance_run.delay(run_id))
