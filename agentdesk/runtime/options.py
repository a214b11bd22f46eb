"""The choices a policy offers, as enums: the runtime compares against them, and the Django
models build their field choices from them, so a value cannot exist on one side only."""

from enum import StrEnum


class OnBound(StrEnum):
    """What hitting a bound (steps, time, tokens, cost, team budget, loop) does."""

    FAIL = "fail"
    ESCALATE = "escalate"


class HumanTimeoutAction(StrEnum):
    """What happens when an escalation waits past its deadline."""

    FAIL = "fail"
    FALLBACK = "fallback"


class RuleAction(StrEnum):
    ANSWER = "answer"
    TOOL = "tool"
    ESCALATE = "escalate"


class ConditionOp(StrEnum):
    EQUALS = "equals"
    CONTAINS = "contains"
    REGEX = "regex"
    GT = "gt"
    LT = "lt"
    EXISTS = "exists"


class ConfidenceSignal(StrEnum):
    """Where a step's confidence comes from; a policy combines one or more."""

    SELF_REPORT = "self_report"  # the confidence the model writes in its reply
    LOGPROBS = "logprobs"  # the probability of the chosen tool/decision tokens
    AGREEMENT = "agreement"  # how many of k samples from the same tier agree
