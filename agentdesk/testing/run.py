"""``run_agent``: an agent through the real engine, in memory, to a settled state.

An agent's author wants to know what *their* agent does with a given model behaviour: which
tools it calls, when it asks a human, whether it stays inside its bounds. So the helper
runs the production ``Engine`` (tools with their timeouts, retries and ledger; approvals;
tiers; bounds) with an in-memory store and the model double the test gives, and plays the
operator from a script of decisions. No Django, no database, no worker: a test takes
milliseconds and runs anywhere the agent's package is installed.

Between slices the run resumes from its last checkpoint, as a fresh worker would, so an
agent whose state does not survive the JSON round trip fails here and not in production.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentdesk.runtime.agent import AgentSpec
from agentdesk.runtime.knowledge import FolderKnowledge, Knowledge
from agentdesk.runtime.llm import ModelClient
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Decision, Reason, RunStatus
from agentdesk.runtime.ports import ResponseCache, TeamBudget
from agentdesk.runtime.profiles import ModelProfile
from agentdesk.runtime.state import EscalationRequest, HumanInput, PolicySnapshot, RunState

from .result import AgentResult
from .store import InMemoryStore

TEST_MODEL = "test-model"
OPERATOR = "test-operator"
# Priced, because a model without a price may not spend: the run would escalate
# ``model_unpriced`` before its first call. The numbers are gpt-4o-mini's list prices.
TEST_PROFILE = ModelProfile(name=TEST_MODEL, input_per_mtok=Decimal("0.15"),
                            cached_input_per_mtok=Decimal("0.075"),
                            output_per_mtok=Decimal("0.60"))
# The policy limit an ``extend_budget`` decision without numbers doubles, by the bound hit
# (as ``runs.services.extended_policy`` does).
LIMIT_HIT = {Reason.STEP_LIMIT: "max_steps", Reason.TIME_LIMIT: "max_seconds",
             Reason.TOKEN_LIMIT: "max_tokens", Reason.COST_LIMIT: "max_cost_usd"}


def default_policy(**overrides: Any) -> PolicySnapshot:
    """The engine's default limits with ONE priced model tier (``test-model``).

    One tier, because with two an unsure reply is asked again of the large model, which
    would take the next scripted reply: a test of an agent scripts one reply per decision.
    Pass ``small_model``/``large_model``/``models`` to test tiering.
    """
    fields: dict[str, Any] = {"small_model": TEST_MODEL, "large_model": "",
                              "models": {TEST_MODEL: TEST_PROFILE}}
    fields.update(overrides)
    return PolicySnapshot(**fields)


# -- the operator's script -----------------------------------------------------------------


@dataclass(frozen=True)
class OperatorDecision:
    """What an operator decides on an escalation (the console's buttons, the API's
    ``resolve``). ``budget``: the limits an ``extend_budget`` raises (default: double the
    one the run hit)."""

    action: Decision
    message: str = ""
    args: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    operator: str = OPERATOR

    def human_input(self) -> HumanInput:
        return HumanInput(decision=self.action.value, message=self.message,
                          operator=self.operator, args=self.args, result=self.result)


def approve(message: str = "", *, args: dict[str, Any] | None = None) -> OperatorDecision:
    """Approve the proposed action; ``args`` edits its arguments first (edit & approve)."""
    return OperatorDecision(Decision.APPROVE, message, args=args)


def reject(message: str = "") -> OperatorDecision:
    return OperatorDecision(Decision.REJECT, message)


def reply(message: str) -> OperatorDecision:
    """Answer the agent's question; the run goes on with the answer."""
    return OperatorDecision(Decision.REPLY, message)


def abort(message: str = "") -> OperatorDecision:
    return OperatorDecision(Decision.ABORT, message)


def take_over(message: str = "", *, result: dict[str, Any] | None = None) -> OperatorDecision:
    """End the run with the operator's own answer; the proposed action is not run."""
    return OperatorDecision(Decision.TAKE_OVER, message, result=result)


def extend_budget(**limits: Any) -> OperatorDecision:
    """Raise policy limits (e.g. ``max_steps=40``) and resume from where the bound stopped."""
    return OperatorDecision(Decision.EXTEND_BUDGET, budget=limits or None)


ScriptedDecision = (OperatorDecision | str
                    | Callable[[EscalationRequest], OperatorDecision | str])


def _decision(item: ScriptedDecision, escalation: EscalationRequest) -> OperatorDecision:
    """A scripted item as a decision: a decision, an action name, or a function of the
    escalation (to decide on what the agent proposes)."""
    if callable(item):
        item = item(escalation)
    if isinstance(item, str):
        return OperatorDecision(Decision(item))
    return item


def _extended(policy: PolicySnapshot, reason: Reason, budget: Mapping[str, Any] | None
              ) -> PolicySnapshot:
    if budget:
        return policy.model_copy(update=dict(budget))
    limit = LIMIT_HIT.get(reason)
    if limit is None:  # a loop or the team budget: the decision itself resets what it can
        return policy
    return policy.model_copy(update={limit: getattr(policy, limit) * 2})


# -- running -------------------------------------------------------------------------------


def run_agent(
    spec: AgentSpec,
    input: Mapping[str, Any] | str,  # the word the API and the console use
    *,
    model: ModelClient,
    policy: PolicySnapshot | None = None,
    decisions: Iterable[ScriptedDecision] = (),
    knowledge: Knowledge | None = None,
    store: InMemoryStore | None = None,
    clock: Callable[[], float] = time.monotonic,
    team_budget: TeamBudget | None = None,
    cache: ResponseCache | None = None,
    run_id: str = "test-run",
) -> AgentResult:
    """Run ``spec`` on ``input`` until it ends, or waits for a human with no decision left.

    ``input`` is checked against the agent's input model as a submission is
    (``InputRejected`` names the bad fields); a plain string means ``{"message": ...}``.
    Each time the run waits for a human, the next of ``decisions`` is applied (an
    ``OperatorDecision``, an action name such as ``"approve"``, or a function of the
    ``EscalationRequest``). ``knowledge`` defaults to the agent's ``knowledge_dir``.
    """
    task_input = {"message": input} if isinstance(input, str) else dict(input)
    task_input = spec.validate_input(task_input)
    policy = policy if policy is not None else default_policy()
    store = store if store is not None else InMemoryStore()
    knowledge = knowledge if knowledge is not None else FolderKnowledge.from_folder(
        spec.knowledge_dir)  # indexed once for the whole run, not once per slice
    script = deque(decisions)
    applied: list[OperatorDecision] = []
    state = RunState(run_id=run_id, agent=spec.slug, input=task_input)
    while True:
        engine = Engine(spec, policy, model, store, clock=clock, team_budget=team_budget,
                        cache=cache, knowledge=knowledge)
        state = engine.advance(state, slice_seconds=math.inf)
        if state.status != RunStatus.WAITING_HUMAN or not script:
            break
        decision = _decision(script.popleft(), store.escalations[-1])
        applied.append(decision)
        if decision.action == Decision.EXTEND_BUDGET:
            policy = _extended(policy, state.reason, decision.budget)
        state = store.last_checkpoint()  # what a fresh worker resumes from
        state.human_input = decision.human_input()
    return AgentResult(state=state, store=store, policy=policy, decisions=applied,
                       decisions_left=len(script))
