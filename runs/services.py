"""Writes: submitting runs and deciding escalations. Each service is one transaction and
fires follow-up work only after commit, so a worker never sees a half-written run."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agentdesk.runtime.agent import InputRejected
from agentdesk.runtime.outcomes import Decision, Reason
from agentdesk.runtime.state import HumanInput, PolicySnapshot
from agentdesk.runtime.tools import ArgumentsInvalid

from . import (
    agent_configs,
    agent_specs,
    audit,
    budgets,
    callback_urls,
    claims,
    enqueue,
    labels,
    lifecycle,
    permissions,
    statements,
)
from .errors import (
    AgentNotInstalled,
    AlreadyDecided,
    CallbackRefused,
    Forbidden,
    IdempotencyConflict,
    InputInvalid,
    InputTooLarge,
    Invalid,
    ModelUnpriced,
    NotFound,
    RunNotWaiting,
)
from .models import Agent, AuditEvent, Escalation, ModelProfile, Run, Team


def validate_input(agent: Agent, task_input: Any) -> dict[str, Any]:
    size = len(json.dumps(task_input, default=str).encode())
    if size > settings.MAX_INPUT_BYTES:
        raise InputTooLarge(f"Input is {size} bytes; the limit is {settings.MAX_INPUT_BYTES}.")
    spec = agent_specs.spec_for(agent)
    if spec is None:
        raise AgentNotInstalled(
            f"Agent {agent.slug!r} has no implementation installed: add its package or its "
            "path to AGENTDESK_AGENTS, or give it instructions in admin to define it there.")
    if not isinstance(task_input, dict):
        raise InputInvalid("Input must be a JSON object.")
    try:
        return spec.validate_input(task_input)
    except InputRejected as exc:  # fields named as in a submission: input.<field>
        raise InputInvalid(str(exc), {f"input.{name}" if name else "input": msgs
                                      for name, msgs in exc.fields.items()}) from None


def request_hash(agent_slug: str, task_input: Any, callback_url: str = "") -> str:
    """SHA-256 of the canonical JSON of what a submission asks for (idempotency check)."""
    body = {"agent": agent_slug, "input": task_input, "callback_url": callback_url or ""}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_run(
    *, team: Team, agent_slug: str, task_input: Any, user_id: int | None,
    idempotency_key: str = "", callback_url: str = "", api_key_id: int | None = None,
) -> Run:
    """Create a run and enqueue it. Raises NotFound, AgentNotInstalled (the row's code is not
    installed), InputInvalid/InputTooLarge, and CallbackRefused for a callback URL webhooks
    must not go to (``runs.callback_urls``).

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

    def create(config: agent_configs.AgentConfig, guard: statements.Statement | None
               ) -> Run | None:
        """The run, from ``config``; None when ``guard`` found the agent changed."""
        agent = config.agent
        clean = validate_input(agent, task_input)
        if callback_url:
            try:
                callback_urls.check(callback_url)
            except callback_urls.RefusedURL as exc:
                raise CallbackRefused(str(exc), {"callback_url": [str(exc)]}) from None
        # One INSERT: a run nobody has advanced has no checkpoint yet (``state`` {}); the
        # first worker starts it from its columns (``checkpoints.load``).
        run = Run(
            team=team, agent=agent, created_by_id=user_id, input=clean,
            snapshot_id=config.snapshot_id(), state={}, idempotency_key=idempotency_key,
            request_hash=digest, callback_url=callback_url or "", api_key_id=api_key_id,
        )
        audit_row = AuditEvent(
            team=team, actor_id=user_id, api_key_id=api_key_id, action="run.submitted",
            target_type="run",
            detail={"agent": agent.slug, "idempotency_key": idempotency_key},
        )
        try:
            if not _insert_run(run, audit_row, guard):
                return None
        except IntegrityError:
            earlier = _replay(team, idempotency_key, digest) if idempotency_key else None
            if earlier is None:
                raise
            return earlier
        run.replayed = False
        return run

    # What this process read of the agent before, written under its guard (Postgres); read
    # again (``config_for``) when there is none, when the guard finds it changed, or when
    # the input fails its checks (they may have changed too).
    config = agent_configs.remembered(team, agent_slug)
    if config is not None:
        with contextlib.suppress(InputInvalid, AgentNotInstalled):
            run = create(config, config.guard)
            if run is not None:
                return run
    run = create(agent_configs.config_for(team, agent_slug), None)
    if run is None:  # unguarded, the INSERT writes or raises
        raise RuntimeError("The run's INSERT wrote nothing.")
    return run


def _insert_run(run: Run, audit_row: AuditEvent, guard: statements.Statement | None) -> bool:
    """INSERT the run and its ``run.submitted`` audit row, both or neither (one statement on
    Postgres: the API's hottest write), under ``guard`` if any (``insert_pair``), and
    enqueue the run once they are committed. False when the guard held them back."""
    # the snapshot is set by id: nothing for Run.save to store
    if not statements.insert_pair(run, audit_row, pk_into="target_id", guard=guard):
        return False
    enqueue.advance_run_on_commit(run.pk)
    return True


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
    """Abort a run that has not ended (``aborted`` / ``aborted_by_operator``); its open
    escalations close as cancelled. Raises RunFinished when it had ended, and Forbidden
    for a user whose role in the run's team does not cancel (a viewer)."""
    if user is not None:
        team_id = Run.objects.filter(pk=run_id).values_list("team_id", flat=True).first()
        if team_id is None:
            raise NotFound("No such run.")
        permissions.require(user, permissions.Action.CANCEL, team_id)
    return lifecycle.cancel(run_id, user=user, api_key_id=api_key_id)


NO_EDIT: Any = object()  # ``decide(args=…)`` not given: approve as proposed


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
    args: Any = NO_EDIT,
    budget: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
) -> DecisionOutcome:
    """Record an operator's decision once; the loser of a race learns who won.

    The escalation is closed by a conditional UPDATE (``WHERE status = 'open'``), and the
    run is moved from ``waiting_human`` the same way, so a double click, a second operator
    or a decision on an aborted run can never resume a run twice. A decision that judges
    the agent's proposal is a calibration label in the same transaction (``runs.labels``).
    Through the API ``user``
    is None and ``api_key_id`` names the deciding key (audited, and told to a later loser).

    Whatever a client sends is checked here: ``args`` (edit & approve) must be a JSON
    object that fits the proposed tool — ``None`` too is refused, never read as "approve
    as proposed"; approve needs something proposed (or a model that had no price: "go
    on"); an extension must lift every limit the run ran into — for a ``team_budget``
    bound, the team's budget for today, by a team admin (``team_extension``); a run that
    paused because its model had no price goes on only once the catalogue prices it
    (``repriced_policy``).
    """
    try:
        choice = Decision(decision)
    except ValueError:
        raise Invalid(f"Unknown decision {decision!r}.") from None
    message = (message or "").strip()
    if choice in (Decision.REPLY,) and not message:
        raise Invalid("A reply needs a message for the agent.", {"message": ["Required."]})
    if choice == Decision.TAKE_OVER and not message and not result:
        raise Invalid("Taking over needs the result to finish the run with.",
                      {"message": ["Required."]})
    if len(message) > 4000:
        raise Invalid("The message is too long (4000 characters at most).")
    pending = Escalation.objects.select_related("run").filter(pk=escalation_id).first()
    if pending is None:
        raise NotFound("No such escalation.")
    if user is not None:  # an API key's scope was checked by the API (runs.api.auth)
        permissions.require(user, permissions.Action.DECIDE, pending.team_id)
    unpriced = pending.reason == Reason.MODEL_UNPRICED
    if choice == Decision.APPROVE and not pending.proposed_tool and not unpriced:
        raise Invalid("Nothing is proposed here, so there is nothing to approve: reply with "
                      "instructions, take over, or abort.",
                      {"action": ["Approve needs a proposed action or answer."]})
    if args is NO_EDIT:
        args = None
    elif choice != Decision.APPROVE:
        raise Invalid("Edited arguments go with approve.", {"args": ["Only with approve."]})
    else:
        args = validate_tool_args(pending, args)
    team_extra = None
    if choice == Decision.EXTEND_BUDGET:  # a team admin's amount for a team_budget bound
        budget, team_extra = team_extension(pending, budget, user)
    extended = extended_policy(pending.run, budget) \
        if choice == Decision.EXTEND_BUDGET else None
    if unpriced and choice not in (Decision.ABORT, Decision.TAKE_OVER):  # the run calls again
        extended = repriced_policy(extended or pending.run.policy)
    now = timezone.now()
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
                    "reason": esc.reason,
                    **({"team_budget_usd": str(team_extra)} if team_extra is not None else {})},
        )
        if choice == Decision.ABORT:
            run = lifecycle.abort(run, decided=esc, user=user, api_key_id=api_key_id)
        else:
            human = HumanInput(decision=choice.value, message=message, args=args, result=result,
                               operator=audit.actor_name(user, api_key_id))
            lifecycle.resume(run, human, decided=esc, policy=extended)
            if team_extra is not None:
                budgets.extend_today(esc=esc, amount_usd=team_extra, user=user)
            labels.from_decision(esc, choice, wrong=lifecycle.overrides(human, esc), user=user)
    return DecisionOutcome(escalation=esc, run=run)


# What an operator may extend, and the limit each bound reason ran into.
LIMIT_FIELDS = {"max_steps": int, "max_seconds": float, "max_tokens": int,
                "max_cost_usd": Decimal}
RUN_LIMITS = (Reason.STEP_LIMIT, Reason.TIME_LIMIT, Reason.TOKEN_LIMIT, Reason.COST_LIMIT)
LIMIT_HIT = {Reason.STEP_LIMIT: "max_steps", Reason.TIME_LIMIT: "max_seconds",
             Reason.TOKEN_LIMIT: "max_tokens", Reason.COST_LIMIT: "max_cost_usd",
             Reason.LOOP_DETECTED: "max_steps"}
# A team_budget bound is the team's, not the run's: extending it adds this many USD to the
# team's budget for the day (``budgets.extend_today``), which only a team admin may.
TEAM_EXTRA = "team_budget_usd"
TEAM_EXTRA_MAX = Decimal("1000000")


def team_extension(esc: Escalation, budget: dict[str, Any] | None,
                   user) -> tuple[dict[str, Any], Decimal | None]:
    """Split an extension into the run's limits and the amount added to the team's budget
    for today. A ``team_budget`` escalation needs that amount, from a team admin (or a
    superuser): Forbidden for anyone else, API keys included. Other escalations refuse it."""
    limits = dict(budget or {})
    amount = limits.pop(TEAM_EXTRA, None)
    if esc.reason != Reason.TEAM_BUDGET:
        if amount is not None:
            raise Invalid("Only a team_budget escalation extends the team's budget.",
                          {TEAM_EXTRA: ["Only for a team_budget escalation."]})
        return limits, None
    if not budgets.may_extend(user, esc.team_id):
        team = esc.team.name
        raise Forbidden(
            f"Only a team admin can raise {team}'s budget for the day; an API key cannot."
            if user is None else
            f"Only a team admin can raise {team}'s budget for the day. Ask one to extend it, "
            "or abort the run.")
    try:
        number = Decimal(str(amount)) if amount not in (None, "") else None
    except ArithmeticError:
        raise Invalid("The amount to add is not a number.", {TEAM_EXTRA: ["Not a number."]}) \
            from None
    if number is None:
        raise Invalid("Say how much to add to the team's budget for today.",
                      {TEAM_EXTRA: ["Required: the USD to add to today's team budget."]})
    if number.is_finite() and 0 < number < TEAM_EXTRA_MAX:
        number = number.quantize(Decimal("0.00000001"))  # the column's places
    if not number.is_finite() or not 0 < number < TEAM_EXTRA_MAX:
        raise Invalid("The amount to add must be more than 0 and below 1,000,000 USD.",
                      {TEAM_EXTRA: ["Must be more than 0 and below 1000000."]})
    return limits, number


def extended_policy(run: Run, budget: dict[str, Any] | None) -> PolicySnapshot:
    """The run's policy with the limits an operator extends: the given ones, else double
    the one it hit. A limit can only go up, and every limit the run has used up (and the
    one its escalation names) must go up, or the run would stop again at once."""
    policy = run.policy
    hit = LIMIT_HIT.get(run.reason)  # StrEnum keys: a plain str finds its member
    if not budget:
        budget = {hit: Decimal(str(getattr(policy, hit))) * 2} if hit else {}
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
        current = getattr(policy, name)
        if Decimal(str(number)) < Decimal(str(current)):
            fields[name] = [f"Cannot go below the current limit {current}."]
            continue
        clean[name] = number
    for name, used in _used_up(run, policy, hit).items():
        if name in fields:
            continue
        new = clean.get(name, getattr(policy, name))
        if Decimal(str(new)) <= Decimal(str(max(used, getattr(policy, name)))):
            fields[name] = [f"Raise it above {getattr(policy, name)}: the run has used "
                            f"{used} and would stop again at once."]
    if fields:
        named = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        raise Invalid(f"The new limits are not valid ({named})", fields)
    return policy.model_copy(update=clean)


def repriced_policy(policy: PolicySnapshot) -> PolicySnapshot:
    """The policy with its models' current catalogue rows, for a run that paused because a
    model had no price (an admin has set it meanwhile). Raises ModelUnpriced while one of
    the run's models still has none: resuming would only pause the run again."""
    names = list(dict.fromkeys(n for n in (policy.small_model, policy.large_model) if n))
    rows = {row.name: row.profile() for row in ModelProfile.objects.filter(name__in=names)}
    missing = [name for name in names if name not in rows or not rows[name].priced]
    if missing:
        where = "; ".join(f"admin → Models → {name}" for name in missing)
        raise ModelUnpriced(
            f"{', '.join(missing)} still {'has' if len(missing) == 1 else 'have'} no price, so "
            f"the run would stop again at once. An admin must set it first ({where}; 0 is a "
            "valid price, e.g. for a local model), then decide again.")
    return policy.model_copy(update={"models": {**policy.models, **rows}})


def _used_up(run: Run, policy: PolicySnapshot, hit: str | None) -> dict[str, Any]:
    """The limits this run has reached (name → what it used), and the one it hit."""
    used = {"max_steps": run.step_count, "max_seconds": round(run.active_seconds, 1),
            "max_tokens": run.tokens_in + run.tokens_out, "max_cost_usd": run.cost_usd}
    reached = {name: value for name, value in used.items()
               if Decimal(str(value)) >= Decimal(str(getattr(policy, name)))}
    if hit and hit not in reached and run.reason in RUN_LIMITS:
        reached[hit] = used[hit]  # worst-case checks stop a run before it reaches a limit
    return reached


def validate_tool_args(esc: Escalation, args: Any) -> dict[str, Any]:
    """Edited arguments must fit the proposed tool's schema before they are accepted."""
    spec = agent_specs.spec_for(esc.run.agent)
    tool = spec.tools.get(esc.proposed_tool) if spec else None
    if tool is None:
        raise Invalid("This escalation proposes no tool call to edit.")
    if not isinstance(args, dict):
        raise InputInvalid("Arguments must be a JSON object.", {"args": ["Not an object."]})
    try:
        return tool.validate(args)
    except ArgumentsInvalid as exc:
        raise InputInvalid(f"The arguments do not fit {tool.name}.",
                           {name or "args": msgs for name, msgs in exc.fields.items()}) from None


def _already_decided(esc: Escalation) -> AlreadyDecided | RunNotWaiting:
    if esc.status == Escalation.Status.CANCELLED:
        return RunNotWaiting("This escalation was closed because its run is no longer waiting.")
    who = esc.decided_by.get_username() if esc.decided_by else _decider_key(esc)
    when = timezone.localtime(esc.decided_at).strftime("%H:%M:%S") if esc.decided_at else ""
    return AlreadyDecided(f"Already decided by {who} ({esc.decision}) at {when}.")


def _decider_key(esc: Escalation) -> str:
    event = (AuditEvent.objects.filter(action="escalation.decided", target_type="escalation",
                                       target_id=str(esc.pk)).order_by("pk").first())
    return audit.actor_name(None, event.api_key_id) if event and event.api_key_id \
        else "someone"
