"""The bounded agent loop: retrieve first, reason second, act last.

``Engine.advance`` moves one run forward from its checkpoint until it ends, waits for a
human, or uses up its time slice. Every step is committed (step row + state) before the
next one starts, so a crash loses at most the step in flight; a decision is checkpointed
before it is acted on, and a tool call already in the ledger is never executed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn

from . import agreement, confidence, guards, human, model_calls, router, rules
from .agent import AgentSpec
from .breaker import BreakerStore
from .endings import Endings, RunEnded
from .knowledge import FolderKnowledge, Knowledge
from .llm import InvalidOutput, ModelClient, ModelError, ModelReply
from .options import RuleAction
from .outcomes import Phase, Reason, RunStatus, StepKind
from .ports import ResponseCache, RunStore, TeamBudget
from .proposals import (
    FINAL_ANSWER,
    REJECTED_BEFORE,
    REPAIR_PROMPT,
    Proposal,
    assistant_tool_call,
    call_signature,
    last_tool_error,
    needs_approval,
    proposal_from,
    tool_message,
    without_confidence,
)
from .state import (
    HumanInput,
    PolicySnapshot,
    RunState,
    StepRecord,
    ToolCallProposal,
)
from .tools import ArgumentsInvalid, ToolContext, execute_tool

__all__ = ["Engine", "FINAL_ANSWER", "REPAIR_PROMPT", "RunEnded"]


class Engine(Endings):
    def __init__(
        self,
        agent: AgentSpec,
        policy: PolicySnapshot,
        model: ModelClient,
        store: RunStore,
        clock: Callable[[], float] = time.monotonic,
        *,
        team_budget: TeamBudget | None = None,
        cache: ResponseCache | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        breaker: BreakerStore | None = None,
        knowledge: Knowledge | None = None,
    ) -> None:
        self.agent = agent
        # the agent's documents: the database's index in production, a folder in tests
        self.knowledge = knowledge if knowledge is not None else FolderKnowledge.from_folder(
            agent.knowledge_dir)
        self.policy = policy
        self.store = store
        self.clock = clock
        self.caller = model_calls.ModelCaller(model, policy, team_budget=team_budget,
                                                 cache=cache)
        self.on_step = on_step
        self.breaker = breaker
        self._mark = clock()

    # -- driving -----------------------------------------------------------------------

    def advance(self, state: RunState, slice_seconds: float = 30.0) -> RunState:
        """Run until the run ends, waits for a human, or ``slice_seconds`` pass."""
        if state.status.is_terminal or (
            state.status == RunStatus.WAITING_HUMAN and state.human_input is None
        ):
            return state  # nothing to do: re-running it would repeat committed steps
        started = self._mark = self.clock()
        state.status = RunStatus.RUNNING
        state.reason = Reason.NONE
        try:
            if state.human_input is not None:
                self._apply_human_input(state, state.human_input)
            if state.phase == Phase.RETRIEVE:
                self._retrieve(state)
            if not state.rules_checked:
                self._apply_rules(state)
            while state.status == RunStatus.RUNNING:
                if self.clock() - started >= slice_seconds:
                    break
                call = state.pending_call
                if state.phase == Phase.ACT and call is not None:
                    self._execute(state, call)
                elif state.phase == Phase.DECIDE and call is not None:
                    self._decide(state, call)
                elif state.phase == Phase.OUTCOME_UNKNOWN and call is not None:
                    self._outcome_unknown(state, call, "")
                elif state.phase == Phase.TOOL_FAILED and call is not None:
                    self._tool_failed(state, call, last_tool_error(state))
                else:
                    self._reason(state)
        except RunEnded:
            pass
        return state

    # -- retrieve, rules ---------------------------------------------------------------

    def _retrieve(self, state: RunState) -> None:
        query = self.agent.search_query(state.input)
        step = self._step(state, StepKind.RETRIEVAL, "retrieve", args={"query": query})
        try:
            passages = self.knowledge.search(query, self.agent.retrieval_limit)
            docs = [p.as_context() for p in passages]
            step.result = {"documents": [d["source"] for d in docs],
                           "scores": [d["score"] for d in docs]}
        except Exception as exc:  # no context is honest; invented context is not
            docs = []
            step.error = f"retrieval failed: {exc}"
        state.context = docs
        state.messages = [
            {"role": "system", "content": self.agent.system_prompt(docs)},
            {"role": "user", "content": self.agent.task_message(state.input)},
        ]
        state.phase = Phase.REASON
        self._commit(state, step)

    def _apply_rules(self, state: RunState) -> None:
        """Admin rules decide before any model: an answer, a fixed call, or a human."""
        state.rules_checked = True
        rule = rules.first_match(self.policy.rules, state.input)
        if rule is None:
            return
        step = self._step(state, StepKind.RULE, rule.name,
                          args={"tier": "rules", "action": rule.action})
        if rule.action == RuleAction.ANSWER:
            answer = rules.render_answer(rule.answer, state.input)
            step.result = {"answer": answer}
            self._commit(state, step)
            self._finish(state, RunStatus.SUCCEEDED, Reason.NONE, answer=answer)
        elif rule.action == RuleAction.TOOL:
            # the fixed call goes through ``_decide`` like a model's: approval still applies
            call = ToolCallProposal(call_id=f"rule-{rule.name}", tool=rule.tool,
                                    args={**rule.tool_args, "confidence": 1.0}, confidence=1.0)
            step.result = {"tool_call": {"name": rule.tool, "args": rule.tool_args}}
            state.messages.append(assistant_tool_call(call))
            state.pending_call, state.phase = call, Phase.DECIDE
            self._commit(state, step)
        else:  # RuleAction.ESCALATE
            self._commit(state, step)
            question = rule.question or f"Rule {rule.name!r} sends this task to a human."
            self._escalate(state, Reason.RULE_MATCHED, question, None)

    # -- reason --------------------------------------------------------------------------

    def _reason(self, state: RunState) -> None:
        chosen: tuple[Proposal, StepRecord] | None = None
        for tier, model in router.tiers(self.policy, state):
            if chosen is not None:  # the cheaper tier was unsure: keep its step, ask higher
                self._commit(state, chosen[1])
            chosen = self._ask(state, tier, model)
            confident = chosen[0].confidence >= self.policy.confidence_threshold
            chosen[1].args["why"] = router.after_decision(state, self.policy, tier, confident)
            if confident:
                break
        assert chosen is not None
        self._act_on(state, *chosen)

    def _act_on(self, state: RunState, proposal: Proposal, model_step: StepRecord) -> None:
        """Checkpoint the decision as the pending call (phase ``decide``), then act on it.

        A run that crashes right after this commit acts on the same decision when it
        resumes: it neither asks the model again nor skips the approval check.
        """
        if proposal.call is not None:
            state.messages.append(assistant_tool_call(proposal.call))
        else:
            assert proposal.decision is not None
            state.messages.append(
                {"role": "assistant", "content": proposal.decision.model_dump_json()}
            )
        state.pending_call = proposal.as_pending()
        state.phase = Phase.DECIDE
        self._commit(state, model_step)
        self._decide(state, state.pending_call)

    def _decide(self, state: RunState, call: ToolCallProposal) -> None:
        """Finish, escalate, or clear ``call`` for execution: a function of the checkpoint.

        Returning normally means phase ``act`` (``_execute`` runs the call next) or, for
        invalid arguments, phase ``reason`` (the model hears what was wrong). A call an
        operator rejected earlier in the run (``RunState.rejected_calls``) always goes back
        to a human, whatever its confidence.
        """
        confident = (call.confidence or 0.0) >= self.policy.confidence_threshold
        if call.tool == FINAL_ANSWER:
            self._settle_answer(state, call, confident)
        state.phase = Phase.ACT
        tool = self.agent.tools.get(call.tool)
        if tool is None:
            return  # _execute reports the unknown tool back to the model
        try:
            tool.validate(without_confidence(call))
        except ArgumentsInvalid as exc:
            self._invalid_arguments(state, call, exc)
            return
        if guards.repeated_call(state, self.policy, call):
            self._bound(state, Reason.LOOP_DETECTED, call)
        if call_signature(call) in state.rejected_calls:  # however confident: a human again
            question = REJECTED_BEFORE.format(tool=call.tool)
            self._escalate(state, Reason.APPROVAL_REQUIRED, question, call)
        if not confident:
            question = f"The agent is unsure about calling {call.tool}. Should it go ahead?"
            self._escalate(state, Reason.LOW_CONFIDENCE, question, call)
        elif needs_approval(self.policy, tool, call):
            question = f"Approve {call.tool} with these arguments?"
            self._escalate(state, Reason.APPROVAL_REQUIRED, question, call)

    def _settle_answer(self, state: RunState, call: ToolCallProposal, confident: bool) -> NoReturn:
        """A final answer ends the run when it is confident; otherwise a human sees it."""
        answer, question = call.args.get("answer"), call.args.get("question")
        if answer is None or not str(answer).strip():
            question = question or "The agent could not decide. How should it proceed?"
            self._escalate(state, Reason.LOW_CONFIDENCE, question, None, call.confidence)
        elif not confident:
            final = call.model_copy(update={"args": {"answer": answer}})
            question = question or "The agent is unsure of this answer. Send it?"
            self._escalate(state, Reason.LOW_CONFIDENCE, question, final)
        else:
            self._finish(state, RunStatus.SUCCEEDED, Reason.NONE, answer=answer)

    def _invalid_arguments(
        self, state: RunState, call: ToolCallProposal, exc: ArgumentsInvalid
    ) -> None:
        """One repair: the model sees the validation error; a second failure goes to a human."""
        message = str(exc)
        state.arg_repairs += 1
        if state.arg_repairs >= 2:
            question = f"The agent keeps proposing invalid arguments ({message}). Fix or reject."
            self._escalate(state, Reason.INVALID_ARGUMENTS, question, call)
        else:
            self._tool_result(state, call, None, message, escalate=False)

    # -- act -----------------------------------------------------------------------------

    def _execute(self, state: RunState, call: ToolCallProposal) -> None:
        tool = self.agent.tools.get(call.tool)
        if tool is None:  # the model's mistake, not a tool's failure: let it choose again
            self._tool_result(state, call, None, f"unknown tool {call.tool!r}", escalate=False)
            return
        key = f"{state.run_id}:{state.step_count}"
        args = without_confidence(call)
        entry = self.store.ledger_begin(key, tool.name, args, side_effect=tool.side_effect)
        if entry is not None and entry.status == "succeeded":
            self._tool_result(state, call, entry.result, "", replayed=True)
            return
        if entry is not None and entry.status == "failed":
            self._tool_result(state, call, None, entry.error, replayed=True)
            return
        if entry is not None and tool.side_effect:
            question = (
                f"{tool.name} started before a crash and its outcome is unknown. "
                "Check it, then reply with what happened, approve to run it again, or abort."
            )
            self._escalate(state, Reason.TOOL_OUTCOME_UNKNOWN, question, call)
        # not started yet, or a call without side effects that started before a crash:
        # running it (again) is safe
        context = ToolContext(state.run_id, key, self.knowledge)
        outcome = execute_tool(tool, context, args, breaker=self.breaker)
        if outcome.outcome_unknown:
            # it may have happened: record the failed attempt, keep the call for a human.
            # Its ledger entry stays "started": a worker that resumes after a crash must
            # escalate it again, not replay it as an ordinary failure
            step = self._step(state, StepKind.TOOL, call.tool, args=args)
            step.error, step.attempts, step.latency_ms = (
                outcome.error, outcome.attempts, outcome.latency_ms)
            # this step moves the idempotency key on: the checkpoint must say "ask a human",
            # or a worker resuming right after this commit would run the call again
            state.phase = Phase.OUTCOME_UNKNOWN
            self._commit(state, step)
            self._outcome_unknown(state, call, outcome.error)
        self.store.ledger_finish(key, outcome.result, outcome.error)
        self._tool_result(state, call, outcome.result, outcome.error,
                          latency_ms=outcome.latency_ms, attempts=outcome.attempts)

    def _tool_failed(self, state: RunState, call: ToolCallProposal, error: str) -> NoReturn:
        question = f"{call.tool} failed: {error}. Reply with instructions, or abort."
        self._escalate(state, Reason.TOOL_FAILED, question, None)

    def _outcome_unknown(self, state: RunState, call: ToolCallProposal, error: str) -> NoReturn:
        detail = f": {error}" if error else ""
        question = (f"{call.tool} did not answer in time and may have run{detail}. "
                    "Check it, then reply, approve to run it again, or abort.")
        self._escalate(state, Reason.TOOL_OUTCOME_UNKNOWN, question, call)

    def _tool_result(
        self,
        state: RunState,
        call: ToolCallProposal,
        result: dict[str, Any] | None,
        error: str,
        *,
        replayed: bool = False,
        latency_ms: int = 0,
        escalate: bool = True,
        attempts: int = 1,
    ) -> None:
        payload = {"ok": False, "error": error} if error else {"ok": True, "result": result}
        state.messages.append(tool_message(call.call_id, payload))
        state.pending_call = None
        state.phase = Phase.REASON
        step = self._step(state, StepKind.TOOL, call.tool, args=without_confidence(call))
        step.result, step.error, step.latency_ms = result, error, latency_ms
        step.confidence, step.attempts = call.confidence, attempts
        if replayed:
            step.args["replayed_from_ledger"] = True
        stuck = guards.no_progress(state, self.policy, result, error)
        failed = bool(error) and escalate
        if failed:
            # the checkpoint must already say "ask a human": a worker resuming right after
            # this commit escalates the failure instead of asking the model on
            state.phase, state.pending_call = Phase.TOOL_FAILED, call
        self._commit(state, step)
        if failed:
            self._tool_failed(state, call, error)
        elif stuck:
            self._bound(state, Reason.LOOP_DETECTED, None)

    # -- model calls -------------------------------------------------------------------

    def _ask(self, state: RunState, tier: str, model: str) -> tuple[Proposal, StepRecord]:
        """One decision from ``model`` (its step not yet committed, its confidence measured
        from the policy's signals), with one repair attempt: an unusable reply is committed
        as a failed step and the model hears why; a second unusable reply fails the run."""
        messages = list(state.messages)
        tools = self.agent.tools.openai_schemas()
        reply, step = self._call_model(state, tier, model, messages, tools)
        try:
            proposal = self._read_proposal(state, tier, reply, step)
        except InvalidOutput as exc:
            messages += [{"role": "assistant", "content": reply.content or ""},
                         {"role": "user", "content": REPAIR_PROMPT.format(error=exc)}]
            reply, step = self._call_model(state, tier, model, messages, tools)
            try:
                proposal = self._read_proposal(state, tier, reply, step)
            except InvalidOutput as exc:
                self._finish(state, RunStatus.FAILED, Reason.INVALID_OUTPUT, error=str(exc))

        def sample() -> agreement.Agreement:
            return agreement.draw(self.caller, state, model, messages, tools, proposal,
                                  step.usage)

        breach = confidence.measure(self.policy, reply, proposal, step, sample)
        if breach is not None:  # a bound refused a sample: the decision's spend is kept
            self._commit(state, step)
            self._bound(state, breach, None)
        return proposal, step

    def _call_model(
        self,
        state: RunState,
        tier: str,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> tuple[ModelReply, StepRecord]:
        """One model call and its (uncommitted) step; a model error or a bound ends the run."""
        try:
            outcome = self.caller.call(state, model, messages, tools)
        except ModelError as exc:
            step = self._step(state, StepKind.MODEL, model, args={"tier": tier})
            step.model, step.error = model, str(exc)
            self._commit(state, step)
            self._finish(state, RunStatus.FAILED, Reason.MODEL_FAILED, error=str(exc))
        if outcome.breach == Reason.MODEL_UNPRICED:  # not a bound: no budget makes it spend
            self._escalate(state, outcome.breach, model_calls.unpriced_question(model), None)
        if outcome.breach is not None:
            self._bound(state, outcome.breach, None)
        reply = outcome.reply
        assert reply is not None  # no bound was breached, so the call was made (or cached)
        step = self._step(state, StepKind.MODEL, reply.model, args={"tier": tier})
        step.model, step.latency_ms = reply.model, reply.latency_ms
        model_calls.record(state, step, outcome)
        return reply, step

    def _read_proposal(
        self, state: RunState, tier: str, reply: ModelReply, step: StepRecord
    ) -> Proposal:
        """``reply`` as a proposal, summarised on ``step``. An unusable reply is committed as
        a failed step, then its ``InvalidOutput`` goes on to the caller."""
        try:
            proposal = proposal_from(reply, tier)
        except InvalidOutput as exc:
            step.error = str(exc)
            step.result = {"content": reply.content}
            self._commit(state, step)
            raise
        step.result = proposal.summary()
        return proposal

    # -- human input -------------------------------------------------------------------

    def _apply_human_input(self, state: RunState, decision: HumanInput) -> None:
        """Record the operator's decision and apply it; unless it ends the run, the run goes
        on from the phase it sets."""
        state.human_input = None
        step = self._step(state, StepKind.HUMAN, decision.decision,
                          args={"operator": decision.operator, "message": decision.message})
        if decision.args is not None:
            step.args["edited_args"] = decision.args
        effect = human.apply(state, decision)
        self._commit(state, step)
        if effect.abort:
            self._finish(state, RunStatus.ABORTED, Reason.ABORTED_BY_OPERATOR)
        elif effect.finish_answer is not None:
            self._finish(state, RunStatus.SUCCEEDED, Reason.NONE, answer=effect.finish_answer)
