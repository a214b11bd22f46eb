"""The simulator's declared error model: how often each tier is wrong, and what its three
confidence signals say about it. Every rate the simulator uses is in this module.

The simulator never knows the answers a benchmark scores. A brain reads the conversation
(sim-small by keywords, sim-large carefully, see ``brains.reading``) and says how sure
each step deserves to be *if its reading is right* (the brain's confidence ``c``). This
module decides, from the task alone, how well the tier knows when its reading may be
wrong, and what it reports.

**Task kinds** (``brains.ambiguity``; only the support scenario has them, other brains'
tasks are all clear). *Hard*: a rule fires under which a keyword reading can be wrong
(a negated request, a policy question, several order numbers, an explicit amount).
*Hedged*: only hedging words ("maybe", "I think"); the keyword reading is right.
*Clear*: neither.

**Honest reliability** ``r`` of a step: ``c``, or ``min(c, UNSURE)`` (``UNSURE`` = 0.55)
for a tier that lowers it on hard and hedged tasks (sim-small).

**Confident errors.** On a hard task sim-small *overlooks* the difficulty with probability
``confident_error_rate`` (default **0.10**, ``LLMSIM_SMALL_CONFIDENT_ERROR_RATE`` or
``SimSettings``), drawn once per task: it then acts on its keyword reading (wrong on most
hard tasks) while believing ``r = c``, i.e. it is as sure as on a clear task. sim-large:
no random errors (rate 0); its careful reading has its own blind spots (e.g. two requests
in one message), which the brains show, not this module.

**Signals** (each tier's parameters are in ``BASIC`` and ``STRONG`` below):

1. *Self-report* (the ``confidence`` the reply writes): overstated and noisy, as real
   models' are: ``s = b + (1 − b)·overstatement + N(0, sd)``, where ``b`` is what the tier
   believes (``r``, or ``c`` when it overlooked the difficulty); the noise is truncated at
   ±2.5 sd, ``s`` is clamped to [0.05, 0.99] and rounded to 2 decimals. sim-small:
   overstatement 0.6, sd 0.08 (an unsure 0.55 is reported as 0.82 ± 0.08, a sure 0.95 as
   0.98 ± 0.08: the two overlap, so self-report alone separates them badly). sim-large:
   no overstatement, no noise (it reports ``c``).
2. *Log-probabilities* (``logprobs: true``): the token probability of the decision is
   ``p = r + N(0, logprob_sd)`` (truncated at ±2.5 sd, clamped to [0.01, 0.999]); it
   follows the real reliability, less noisily than self-report. On an overlooked task
   the tokens show the error (``p`` around ``r``) with probability
   ``logprob_shows_error`` (sim-small 0.5, drawn once per task); otherwise they are as
   confident as the self-report believes (``p`` around ``c``). logprob_sd: sim-small
   0.04, sim-large 0.02.
3. *Samples* (``temperature`` > 0): each sample may *diverge* from the greedy reading with
   probability ``divergence[kind] × min(temperature, 1)``: sim-small 0.50 on hard tasks,
   0.30 on hedged, 0.04 on clear; sim-large 0.03 on any. A diverging sample acts on the
   other tier's reading when that proposes something else, else it asks the operator to
   confirm — so k samples agree less where the reading is unreliable.

**Determinism.** Every draw is a hash (SHA-256) of what it depends on: per task (the
agent, the task message, the tier) for overlooking and for whether the tokens show it;
per request and per sample for the noise and divergence, the request being its decision
point (``decision_point``: the task, the operator's messages, the calls so far — not the
ids inside tool results, which differ between runs of the same conversation).
A sample is the greedy reply at temperature 0 or without a temperature (the simulator's
default, unlike OpenAI's 1, so a replayed conversation gets the same answer); at
temperature > 0 it is told apart by ``seed`` when the request has one, else by how many
identical requests came before it (see ``SampleCounter``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

from .brains import Conversation, Decision, Reply, TaskKind, ToolCall, difficulty
from .models import Quality, SimModel

CONFIDENT_ERROR_RATE_ENV = "LLMSIM_SMALL_CONFIDENT_ERROR_RATE"
DEFAULT_SMALL_CONFIDENT_ERROR_RATE = 0.10
UNSURE_CONFIDENCE = 0.55
"""Honest reliability of a step of sim-small on a hard or hedged task it noticed."""
NOISE_TRUNCATION_SD = 2.5
SELF_REPORT_RANGE = (0.05, 0.99)
TOKEN_PROBABILITY_RANGE = (0.01, 0.999)
CONFIRM_QUESTION = ("Before I go on: I am not sure I read the request right. "
                    "Can you confirm what the customer is asking for?")


@dataclass(frozen=True)
class TierErrors:
    """One tier's declared rates (see the module docstring for what each one does)."""

    confident_error_rate: float
    unsure_confidence: float | None  # None: the tier does not lower r on hard tasks
    overstatement: float
    self_report_sd: float
    logprob_sd: float
    logprob_shows_error: float
    divergence: dict[TaskKind, float] = field(default_factory=dict)


BASIC = TierErrors(
    confident_error_rate=DEFAULT_SMALL_CONFIDENT_ERROR_RATE,
    unsure_confidence=UNSURE_CONFIDENCE,
    overstatement=0.6, self_report_sd=0.08,
    logprob_sd=0.04, logprob_shows_error=0.5,
    divergence={TaskKind.HARD: 0.50, TaskKind.HEDGED: 0.30, TaskKind.CLEAR: 0.04},
)
STRONG = TierErrors(
    confident_error_rate=0.0, unsure_confidence=None,
    overstatement=0.0, self_report_sd=0.0,
    logprob_sd=0.02, logprob_shows_error=1.0,
    divergence={TaskKind.HARD: 0.03, TaskKind.HEDGED: 0.03, TaskKind.CLEAR: 0.03},
)


@dataclass(frozen=True)
class ErrorModel:
    """The rates of every tier, by the tier's quality."""

    basic: TierErrors = BASIC
    strong: TierErrors = STRONG

    @classmethod
    def with_small_error_rate(cls, rate: float | None = None) -> ErrorModel:
        """The declared model, sim-small's confident error rate from ``rate``, else from
        ``LLMSIM_SMALL_CONFIDENT_ERROR_RATE``, else the default (0.10)."""
        if rate is None:
            raw = os.environ.get(CONFIDENT_ERROR_RATE_ENV, "").strip()
            rate = float(raw) if raw else DEFAULT_SMALL_CONFIDENT_ERROR_RATE
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{CONFIDENT_ERROR_RATE_ENV} must be between 0 and 1, not {rate}")
        return cls(basic=dataclasses.replace(BASIC, confident_error_rate=rate))

    def tier(self, quality: Quality) -> TierErrors:
        return self.strong if quality >= Quality.STRONG else self.basic


@dataclass(frozen=True)
class Sample:
    """Which draw of the model a request is: ``salt`` None is the greedy reply."""

    salt: str | None = None
    temperature: float = 0.0


GREEDY = Sample()


@dataclass(frozen=True)
class Answer:
    reply: Reply  # with the self-reported confidence written in
    token_probability: float  # what the decision's log-probabilities say
    overlooked: bool  # a confident error: the tier missed that the task is hard
    diverged: bool  # a sample that read the task differently from the greedy reply


def answer(
    brain: Callable[[Conversation, SimModel], Reply],
    conversation: Conversation,
    model: SimModel,
    sample: Sample = GREEDY,
    errors: ErrorModel | None = None,
) -> Answer:
    """The brain's reply as ``model`` gives it under the error model (see the module)."""
    rates = (errors or ErrorModel()).tier(model.quality)
    kind = difficulty(conversation)
    task = (model.quality.name, conversation.agent_slug, conversation.task)
    per_request = (model.quality.name, decision_point(conversation), sample.salt or "greedy")

    overlooked = kind is TaskKind.HARD and _uniform(*task, "overlook") < \
        rates.confident_error_rate
    reply = brain(conversation, model)
    diverged = sample.salt is not None and _uniform(*per_request, "diverge") < \
        rates.divergence.get(kind, 0.0) * min(sample.temperature, 1.0)
    if diverged:
        reply = _other_reading(brain, conversation, model, reply)

    c = confidence_of(reply)
    unsure = rates.unsure_confidence
    honest = min(c, unsure) if unsure is not None and kind is not TaskKind.CLEAR else c
    believed = c if overlooked else honest
    reported = believed + (1 - believed) * rates.overstatement \
        + rates.self_report_sd * _normal(*per_request, "self-report")
    shows = not overlooked or _uniform(*task, "tokens show") < rates.logprob_shows_error
    token = (honest if shows else c) + rates.logprob_sd * _normal(*per_request, "logprobs")
    return Answer(
        reply=with_confidence(reply, round(_clamp(reported, SELF_REPORT_RANGE), 2)),
        token_probability=_clamp(token, TOKEN_PROBABILITY_RANGE),
        overlooked=overlooked, diverged=diverged,
    )


def confidence_of(reply: Reply) -> float:
    value = reply.confidence if isinstance(reply, Decision) else reply.arguments.get("confidence")
    return float(value) if isinstance(value, int | float) else 0.5


def with_confidence(reply: Reply, value: float) -> Reply:
    if isinstance(reply, Decision):
        return dataclasses.replace(reply, confidence=value)
    return ToolCall(reply.name, {**reply.arguments, "confidence": value})


def same_proposal(first: Reply, other: Reply) -> bool:
    """Same tool and arguments, or the same answer / question (confidence aside)."""
    if isinstance(first, ToolCall) and isinstance(other, ToolCall):
        return (first.name, _without_confidence(first)) == \
            (other.name, _without_confidence(other))
    if isinstance(first, Decision) and isinstance(other, Decision):
        return (first.answer, first.question) == (other.answer, other.question)
    return False


class SampleCounter:
    """Tells apart identical requests at temperature > 0 that carry no ``seed``: the n-th
    such request is sample n. Bounded (least recently used requests are forgotten)."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def sample(self, request_key: str, temperature: float | None, seed: int | None) -> Sample:
        if not temperature or temperature <= 0:
            return GREEDY
        if seed is not None:
            return Sample(f"seed{seed}", temperature)
        count = self._seen.pop(request_key, 0)
        self._seen[request_key] = count + 1
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return Sample(f"draw{count}", temperature)


def decision_point(conversation: Conversation) -> str:
    """What a request asks the model to decide: the task, the operator's messages and the
    calls made so far (names, arguments, whether they worked). Not the tool results'
    payloads, whose ids (a refund id, a run's number) differ from run to run of the same
    conversation and would make the draws depend on them."""
    return request_key(
        conversation.agent_slug, conversation.task,
        [message.text for message in conversation.operator_messages],
        [(e.name, {k: v for k, v in e.arguments.items() if k != "confidence"},
          None if e.result is None else e.result.ok) for e in conversation.exchanges],
    )


def request_key(*parts: object) -> str:
    """A stable key for a request's content (the parts are JSON-able)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _other_reading(brain, conversation: Conversation, model: SimModel, greedy: Reply) -> Reply:
    """What a diverging sample says: the other tier's reading, or a request to confirm."""
    other = Quality.BASIC if model.quality >= Quality.STRONG else Quality.STRONG
    alternative = brain(conversation, dataclasses.replace(model, quality=other))
    if not same_proposal(alternative, greedy):
        return alternative
    return Decision.ask(CONFIRM_QUESTION, confidence_of(greedy))


def _without_confidence(call: ToolCall) -> dict:
    return {k: v for k, v in call.arguments.items() if k != "confidence"}


def _uniform(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


_STANDARD = NormalDist()
_TAIL = _STANDARD.cdf(-NOISE_TRUNCATION_SD)


def _normal(*parts: object) -> float:
    """A standard normal draw truncated at ±2.5, fixed by ``parts``."""
    return _STANDARD.inv_cdf(_TAIL + (1 - 2 * _TAIL) * _uniform(*parts))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])
