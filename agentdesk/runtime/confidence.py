"""A model step's confidence: the signals its policy chose, recorded raw, and one number.

**The signals** (``ConfidenceSignal``), each in [0, 1], or None when not measured:

- ``self_report``: the confidence the model writes (the ``confidence`` argument of a tool
  call, the field of the decision). Always recorded, since it costs nothing; null when the
  model gave none or one outside [0, 1].
- ``logprobs``: the joint probability of the tokens that carry the decision
  (``token_probability`` says exactly which). Asked for only when the policy chooses it
  and the model's profile says its endpoint returns logprobs; null for a native tool call
  (OpenAI gives logprobs for the content only).
- ``agreement``: the share of k samples from the same tier that propose the same thing
  (``agreement``; each sample is paid for and counted).

Every model step that produced a proposal records them as
``args["signals"] = {"self_report": …, "logprobs": …, "agreement": …}`` (all three keys),
its combined value as the step's ``confidence``, and the signals that went into it as
``args["confidence_from"]``.

**The combination is the minimum of the policy's chosen signals that are available**::

    confidence = min(value of s for s in policy.confidence_signals if s was measured)

Why the minimum, and not a (weighted) mean:

- The signals fail in different ways. Self-reports cluster high and can be confidently
  wrong; token probabilities measure how sure the model was of its words, not of the
  facts; samples of the same model can agree on the same misreading. With the minimum,
  an action is confident only when every chosen witness is, and any one that doubts
  sends it up a tier or to a human. That is the direction this product should err in:
  a needless escalation costs an operator a click, a confidently wrong refund costs money.
- It has no weights to fit. A weighted mean needs weights learned from labelled outcomes,
  which a new agent does not have; the calibration (per agent and tier, from operators'
  decisions) then only has to place one threshold on a number whose meaning is plain
  ("the least sure signal said 0.33").
- It is monotone in every signal, so adding a signal can only lower the confidence, never
  make a doubtful step look sure.

The price is that the combined value is only as high as the signal that runs lowest on
this agent (e.g. the joint probability of a long free-text answer); the calibrated
threshold absorbs such a systematic offset.

**Rules for missing values.** A chosen signal that could not be measured (no logprobs for
a native tool call, no sample answered) is left out. A chosen self-report the model was
asked for and did not give counts as 0, as before: the model's failure to say is not the
endpoint's. When none of the chosen signals is available, the self-report decides (0 when
unreadable), so a step is never judged on no evidence.

**Samples only when they can matter.** With the minimum, once the signals already measured
put a step below the threshold, agreement cannot raise it: the samples are then not drawn
(not paid for), agreement is recorded null and ``args["agreement_skipped"]`` says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .agreement import Agreement
from .llm import ModelReply
from .options import ConfidenceSignal
from .outcomes import Reason
from .proposals import Proposal
from .state import PolicySnapshot, StepRecord
from .token_probability import decision_probability

Signals = dict[str, float | None]
SKIPPED = "the other signals are below the threshold already"


@dataclass(frozen=True)
class Combined:
    confidence: float
    used: list[str]  # the signals the value came from


def measure(
    policy: PolicySnapshot,
    reply: ModelReply,
    proposal: Proposal,
    step: StepRecord,
    sample: Callable[[], Agreement],
) -> Reason | None:
    """Measure the chosen signals of ``proposal`` (read from ``reply``; ``sample`` draws the
    agreement samples) and put them, the combined confidence and the samples' usage on
    ``step`` and ``proposal``. Returns the bound that refused a sample, if one did."""
    signals = first_signals(policy, reply, proposal)
    drawn = None
    if wants_samples(policy, signals):
        drawn = sample()
        drawn.record(step)
        signals[ConfidenceSignal.AGREEMENT.value] = _rounded(drawn.value)
    elif ConfidenceSignal.AGREEMENT in policy.confidence_signals:
        step.args["agreement_skipped"] = SKIPPED
    combined = combine(policy, signals)
    proposal.combined = step.confidence = combined.confidence
    step.args["signals"] = signals
    step.args["confidence_from"] = combined.used
    return drawn.breach if drawn is not None else None


def first_signals(policy: PolicySnapshot, reply: ModelReply, proposal: Proposal) -> Signals:
    """The signals read from the decision's reply itself (agreement: not yet drawn)."""
    logprobs = None
    if ConfidenceSignal.LOGPROBS in policy.confidence_signals:
        tool = proposal.call.tool if proposal.call is not None else None
        logprobs = decision_probability(reply, tool=tool)
    return {
        ConfidenceSignal.SELF_REPORT.value: _rounded(proposal.self_report),
        ConfidenceSignal.LOGPROBS.value: _rounded(logprobs),
        ConfidenceSignal.AGREEMENT.value: None,
    }


def wants_samples(policy: PolicySnapshot, signals: Signals) -> bool:
    """True when the policy chose agreement and the samples could still change the
    outcome (the signals so far do not already put the step below the threshold)."""
    if ConfidenceSignal.AGREEMENT not in policy.confidence_signals:
        return False
    measured = [s for s in policy.confidence_signals if s != ConfidenceSignal.AGREEMENT]
    so_far = _available(measured, signals)
    return not so_far or min(so_far.values()) >= policy.confidence_threshold


def combine(policy: PolicySnapshot, signals: Signals) -> Combined:
    """The step's confidence from ``signals``: see the module docstring."""
    available = _available(policy.confidence_signals, signals)
    if not available:
        available = _available([ConfidenceSignal.SELF_REPORT], signals)
    return Combined(confidence=min(available.values()), used=list(available))


def _available(chosen: list[ConfidenceSignal], signals: Signals) -> dict[str, float]:
    values: dict[str, float] = {}
    for signal in dict.fromkeys(chosen):
        value = signals.get(signal.value)
        if value is None and signal == ConfidenceSignal.SELF_REPORT:
            value = 0.0  # asked for and not given: not confident
        if value is not None:
            values[signal.value] = value
    return values


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
