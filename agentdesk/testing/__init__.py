"""AgentDesk's test kit: test an agent through the real engine, in memory, in milliseconds.

Plain Python (no Django, no database: an import-linter contract keeps it so), so an agent
package's own tests need nothing but ``agentdesk`` installed::

    from agentdesk.testing import ScriptedModel, approve, answer, call, run_agent

    def test_refund_needs_approval_then_succeeds():
        model = ScriptedModel(
            call("lookup_order", {"order_id": "1042"}),
            call("issue_refund", {"order_id": "1042", "amount": 180.0}),
            answer("Refunded $180."),
        )
        result = run_agent(AGENT, "Refund order 1042", model=model, decisions=[approve()])
        result.assert_escalated("approval_required", tool="issue_refund")
        result.assert_called("issue_refund", order_id="1042")
        result.assert_succeeded("Refunded $180.").assert_within_bounds()

- models (``models``): ``ScriptedModel`` plays queued replies, ``FunctionModel`` computes
  each reply from the request; ``answer``, ``ask`` and ``call`` build the replies;
- ``run_agent`` (``run``) drives the engine to a settled state, applying scripted operator
  decisions (``approve``, ``reject``, ``reply``, ``abort``, ``take_over``,
  ``extend_budget``) whenever the run waits for a human; it returns an ``AgentResult``
  (``result``) with the assertions;
- the in-memory ports (``store``): run store and tool ledger, clock, team budget, cache.

The same doubles are the runtime's own unit-test fakes (``tests/runtime/fakes.py``
re-exports them): one implementation, exercised by both.
"""

from .models import (
    FunctionModel,
    ModelCall,
    ScriptedModel,
    ToolResultSeen,
    answer,
    ask,
    call,
    decision_reply,
    prompted_call_reply,
    raw_reply,
    tool_call_reply,
    with_logprobs,
)
from .result import AgentResult, ToolCall
from .run import (
    TEST_MODEL,
    OperatorDecision,
    abort,
    approve,
    default_policy,
    extend_budget,
    reject,
    reply,
    run_agent,
    take_over,
)
from .store import (
    DictResponseCache,
    FakeClock,
    InMemoryStore,
    InMemoryTeamBudget,
    SimulatedCrash,
)

__all__ = [
    "TEST_MODEL",
    "AgentResult",
    "DictResponseCache",
    "FakeClock",
    "FunctionModel",
    "InMemoryStore",
    "InMemoryTeamBudget",
    "ModelCall",
    "OperatorDecision",
    "ScriptedModel",
    "SimulatedCrash",
    "ToolCall",
    "ToolResultSeen",
    "abort",
    "answer",
    "approve",
    "ask",
    "call",
    "decision_reply",
    "default_policy",
    "extend_budget",
    "prompted_call_reply",
    "raw_reply",
    "reject",
    "reply",
    "run_agent",
    "take_over",
    "tool_call_reply",
    "with_logprobs",
]
