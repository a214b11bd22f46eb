"""Named states and reason codes: every way a run can pause or end has a name."""

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_HUMAN = "waiting_human"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


class Phase(StrEnum):
    """Where a run stands between steps: what ``Engine.advance`` does next on resume.

    Stored in the JSON checkpoint, so the values are part of its format.
    """

    RETRIEVE = "retrieve"  # gather context before any model call
    REASON = "reason"  # ask the model what to do next
    DECIDE = "decide"  # a decision is checkpointed: finish, escalate, or clear it to act
    ACT = "act"  # the pending call is cleared: execute it
    OUTCOME_UNKNOWN = "outcome_unknown"  # a side effect may have run: ask a human
    TOOL_FAILED = "tool_failed"  # the pending call failed for good: ask a human
    AWAIT_HUMAN = "await_human"  # escalated: nothing to do until an operator decides
    DONE = "done"  # ended


BOUND_REASONS = frozenset(
    {"step_limit", "time_limit", "token_limit", "cost_limit", "team_budget", "loop_detected"}
)

TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ABORTED})


class Reason(StrEnum):
    """Why a run paused or ended (empty for a plain success)."""

    NONE = ""
    STEP_LIMIT = "step_limit"
    TIME_LIMIT = "time_limit"
    TOKEN_LIMIT = "token_limit"
    COST_LIMIT = "cost_limit"
    TEAM_BUDGET = "team_budget"
    LOOP_DETECTED = "loop_detected"
    TOOL_FAILED = "tool_failed"
    TOOL_OUTCOME_UNKNOWN = "tool_outcome_unknown"
    MODEL_FAILED = "model_failed"
    INVALID_OUTPUT = "invalid_output"
    HUMAN_TIMEOUT = "human_timeout"
    ABORTED_BY_OPERATOR = "aborted_by_operator"
    LOW_CONFIDENCE = "low_confidence"
    APPROVAL_REQUIRED = "approval_required"
    REJECTED = "rejected"
    RULE_MATCHED = "rule_matched"
    INTERNAL_ERROR = "internal_error"
    INVALID_ARGUMENTS = "invalid_arguments"
    MODEL_UNPRICED = "model_unpriced"  # the catalogue has no price for it: it may not spend
    AGENT_NOT_INSTALLED = "agent_not_installed"  # its code went away while the run was queued


class StepKind(StrEnum):
    RETRIEVAL = "retrieval"
    MODEL = "model"
    TOOL = "tool"
    ESCALATION = "escalation"
    HUMAN = "human"
    RULE = "rule"
    FINAL = "final"


class Decision(StrEnum):
    """What an operator decided on an escalation."""

    APPROVE = "approve"
    REJECT = "reject"
    REPLY = "reply"
    ABORT = "abort"
    EXTEND_BUDGET = "extend_budget"
    TAKE_OVER = "take_over"
