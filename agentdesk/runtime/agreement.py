"""The agreement confidence signal: k more samples from the same tier, and how many of them
propose what the decision proposes.

After the decision call (temperature 0: the reply the engine acts on), the same model is
sent the same messages k more times (k = ``policy.agreement_samples``) at
``policy.agreement_temperature``. Agreement = the share of those samples whose proposal
matches the decision's:

- a tool call matches the same tool with the same arguments (``call_signature``: the
  arguments without the self-reported confidence, keys sorted);
- a decision matches the same answer after collapsing whitespace and ignoring case (two
  decisions that both ask a human instead, answer null, match);
- a sample whose reply cannot be read as a proposal does not match: the model wrote
  something other than the decision.

**Cost.** Each sample is a ``ModelCaller`` call like any other: the run's bounds, its
token and cost ceilings counted with the step's usage so far (the decision call and the
samples before it, ``pending``), and a reservation on the team's daily budget, settled
with the real cost. Never the response cache: the samples are deliberately
non-deterministic, and a cached one would only agree with itself. Their usage is added to
the decision's model step (one Step row per decision, the samples listed in its
``args["agreement_samples"]``), so the run's and the team's spend include them; they are
not steps of their own and do not count against ``max_steps``.

**Failures.** A bound that refuses a sample stops the sampling and is reported
(``breach``): the engine ends or escalates the run for it like any bound, because the
policy asked for this evidence and the run cannot pay for it. A model error on a sample
also stops the sampling (an endpoint that fails says nothing about how sure the model is,
and k more failures would only wait k times longer): the signal is then the share among
the samples that answered, None when none did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .llm import InvalidOutput, ModelError
from .model_calls import ModelCaller, usage_of
from .outcomes import Reason
from .proposals import Proposal, call_signature, proposal_from
from .state import RunState, StepRecord, Usage

SUMMARY_CHARS = 120


@dataclass
class Agreement:
    value: float | None  # the share of answered samples that match; None: none answered
    usage: Usage = field(default_factory=Usage)  # what the samples cost, all of them
    samples: list[dict[str, Any]] = field(default_factory=list)  # one record per sample
    breach: Reason | None = None  # a bound refused a sample

    def record(self, step: StepRecord) -> None:
        """Put the samples on the decision's step: their usage and what each proposed."""
        step.usage.add(self.usage)
        step.args["agreement_samples"] = self.samples
        if self.breach is not None:
            step.args["agreement_stopped"] = self.breach.value


def draw(
    caller: ModelCaller,
    state: RunState,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    decision: Proposal,
    pending: Usage,
) -> Agreement:
    """``policy.agreement_samples`` samples of ``model`` on ``messages``, compared with
    ``decision``. ``pending`` is the step's usage so far (the decision call's)."""
    policy = caller.policy
    spent = pending.model_copy()
    result = Agreement(value=None)
    matches = answered = 0
    for _ in range(policy.agreement_samples):
        try:
            outcome = caller.call(state, model, messages, tools,
                                  temperature=policy.agreement_temperature, pending=spent)
        except ModelError as exc:
            result.samples.append({"error": str(exc)})
            break
        if outcome.breach is not None:
            result.breach = outcome.breach
            break
        assert outcome.reply is not None
        usage = usage_of(outcome)
        spent.add(usage)
        result.usage.add(usage)
        try:
            sample = proposal_from(outcome.reply, decision.tier)
            agrees, said = same_proposal(decision, sample), summary(sample)
        except InvalidOutput as exc:
            agrees, said = False, f"unreadable: {exc}"[:SUMMARY_CHARS]
        answered += 1
        matches += agrees
        result.samples.append({"agrees": agrees, "proposal": said,
                               "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out,
                               "cost_usd": str(usage.cost_usd)})
    if answered:
        result.value = matches / answered
    return result


def same_proposal(first: Proposal, other: Proposal) -> bool:
    if first.call is not None or other.call is not None:
        return (first.call is not None and other.call is not None
                and call_signature(first.call) == call_signature(other.call))
    assert first.decision is not None and other.decision is not None
    return normal_answer(first.decision.answer) == normal_answer(other.decision.answer)


def normal_answer(answer: str | None) -> str | None:
    return None if answer is None else " ".join(answer.split()).casefold()


def summary(proposal: Proposal) -> str:
    """What a sample proposed, short, for the step's record."""
    if proposal.call is not None:
        return call_signature(proposal.call)[:SUMMARY_CHARS]
    assert proposal.decision is not None
    answer = normal_answer(proposal.decision.answer)
    return "ask a human" if answer is None else f"answer: {answer}"[:SUMMARY_CHARS]
