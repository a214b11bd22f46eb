"""Admin rules decide before any model: a template answer, a fixed tool call, or a human."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from agentdesk.runtime import rules
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput, RuleCondition, RuleSpec

from .conftest import new_run
from .fakes import decision_reply

TASK = {
    "message": "Please refund Order 1042, it arrived broken",
    "plan": " Gold ",
    "amount": 150,
    "customer": {"tier": "vip", "orders": 12},
}


def cond(field: str, op: str, value=None) -> RuleCondition:
    return RuleCondition(field=field, op=op, value=value)


# -- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (cond("plan", "equals", "gold"), True),  # trimmed, case-insensitive
        (cond("plan", "equals", "silver"), False),
        (cond("amount", "equals", "150"), True),
        (cond("message", "contains", "REFUND"), True),
        (cond("message", "contains", "cancel"), False),
        (cond("message", "regex", r"order\s+\d{4}"), True),
        (cond("message", "regex", r"^order"), False),
        (cond("message", "regex", "(unclosed"), False),  # a bad regex never matches
        (cond("amount", "gt", 100), True),
        (cond("amount", "gt", 150), False),
        (cond("amount", "gt", "not a number"), False),
        (cond("message", "gt", 1), False),  # a value that is not a number
        (cond("amount", "lt", 200), True),
        (cond("amount", "lt", 150), False),
        (cond("customer.orders", "gt", 10), True),  # dotted path into nested input
        (cond("customer.tier", "equals", "VIP"), True),
        (cond("customer", "exists"), True),
        (cond("customer.tier", "exists"), True),
        (cond("coupon", "exists"), False),
        (cond("customer.missing", "exists"), False),
        (cond("message.deeper", "exists"), False),  # cannot descend into a string
    ],
)
def test_condition_holds_for_each_op(condition, holds):
    assert rules.condition_holds(condition, TASK) is holds


def test_an_unknown_op_is_refused_before_it_can_silently_never_match():
    with pytest.raises(ValidationError, match="op"):
        cond("amount", "between", 1)


@pytest.mark.parametrize("op", ["equals", "contains", "regex", "gt", "lt"])
def test_a_missing_field_never_matches(op):
    assert rules.condition_holds(cond("coupon", op, ""), TASK) is False
    assert rules.condition_holds(cond("customer.coupon", op, "0"), TASK) is False


def test_first_match_needs_all_conditions_and_returns_the_first_matching_rule():
    partial = RuleSpec(
        name="partial",
        action="escalate",
        conditions=[cond("amount", "gt", 100), cond("plan", "equals", "silver")],
    )
    empty = RuleSpec(name="empty", action="answer", answer="never")  # no conditions: never
    first = RuleSpec(name="first", action="escalate", conditions=[cond("amount", "gt", 100)])
    second = RuleSpec(name="second", action="answer", conditions=[cond("plan", "exists")])

    assert rules.first_match([partial, empty, first, second], TASK) is first
    assert rules.first_match([second, first], TASK) is second
    assert rules.first_match([partial, empty], TASK) is None
    assert rules.first_match([], TASK) is None


def test_render_answer_fills_placeholders_and_blanks_unknown_ones():
    out = rules.render_answer("Hi {plan}! {amount} for '{message}'{nope}.", TASK)
    assert out == f"Hi  Gold ! 150 for '{TASK['message']}'."
    assert rules.render_answer("broken {", TASK) == "broken {"


@pytest.mark.parametrize(
    "template",
    ["{message.__class__}", "{message.__class__.__mro__}", "{customer[tier]}", "{message[0]}",
     "{0}", "{}", "{message!r}", "{message:{plan}}"],
)
def test_render_answer_never_evaluates_positions_attributes_or_indexes(template):
    """A bad template that slipped past admin renders empty, never Python internals."""
    assert rules.render_answer(f"<{template}>", TASK) == "<>"


def test_render_answer_keeps_escaped_braces_and_fills_plain_names():
    assert rules.render_answer("{{message}} = {message}", {"message": "hi"}) == "{message} = hi"


class _Input(BaseModel):
    message: str
    count: int
    ratio: float | None = None
    flag: bool = False
    tags: list[str] = []
    nested: dict[str, str] = {}


def test_the_placeholders_are_the_inputs_text_and_number_fields():
    assert rules.placeholders(_Input.model_json_schema()) == ["count", "message", "ratio"]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Hi {customer}", "{customer}: unknown placeholder"),
        ("Hi {0}", "{0}: positional placeholders are not allowed"),
        ("Hi {}", "{}: positional placeholders are not allowed"),
        ("Hi {message.__class__}", "{message.__class__}: attribute or index access"),
        ("Hi {message[0]}", "{message[0]}: attribute or index access"),
        ("Hi {message!r}", "{message!r}: write the plain placeholder {message}"),
        ("Hi {message:>10}", "{message:>10}: write the plain placeholder {message}"),
        ("Hi {message", "malformed template"),
    ],
)
def test_template_errors_name_each_bad_placeholder(template, problem):
    [error] = rules.template_errors(template, ["message"])
    assert problem in error


def test_a_template_of_known_names_and_escaped_braces_has_no_errors():
    assert rules.template_errors("{{json}} You wrote: {message}", ["message"]) == []


# -- in the engine -------------------------------------------------------------------------


def _rule(**kwargs) -> RuleSpec:
    kwargs.setdefault("conditions", [cond("message", "contains", "refund")])
    return RuleSpec(**kwargs)


def test_an_answer_rule_finishes_before_any_model_call(engine, model, store, policy):
    policy.rules = [
        _rule(name="no-match", action="escalate", conditions=[cond("message", "exists"),
                                                               cond("plan", "exists")]),
        _rule(name="faq", action="answer", conditions=[cond("message", "regex", r"how long")],
              answer="Refunds take 5 days. You asked: {message}{unknown}"),
    ]
    state = engine.advance(new_run("How long does a refund take?"))

    assert model.calls == []
    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "Refunds take 5 days. You asked: How long does a refund take?"
    assert store.kinds() == ["retrieval", "rule", "final"]
    rule_step = store.steps[1]
    assert (rule_step.name, rule_step.args) == ("faq", {"tier": "rules", "action": "answer"})
    assert rule_step.result == {"answer": state.answer}
    assert store.steps[-1].result == {"answer": state.answer}


def test_no_matching_rule_leaves_the_decision_to_the_model(engine, model, store, policy):
    policy.rules = [_rule(name="refunds", action="escalate")]
    model.script(decision_reply("Order 1077 is in transit."))
    state = engine.advance(new_run("Where is my order 1077?"))
    assert state.status == RunStatus.SUCCEEDED
    assert len(model.calls) == 1
    assert store.steps_of(StepKind.RULE) == []


def test_a_tool_rule_makes_the_fixed_call_then_the_model_goes_on(engine, model, store, policy):
    policy.rules = [
        _rule(name="lookup", action="tool", conditions=[cond("message", "contains", "1077")],
              tool="lookup_order", tool_args={"order_id": "1077"}),
    ]
    model.script(decision_reply("Order 1077 is in transit."))
    state = engine.advance(new_run("Where is my order 1077?"))

    assert state.status == RunStatus.SUCCEEDED
    assert store.kinds() == ["retrieval", "rule", "tool", "model", "final"]
    rule_step, tool_step = store.steps[1:3]
    assert rule_step.args == {"tier": "rules", "action": "tool"}
    assert rule_step.result == {"tool_call": {"name": "lookup_order", "args": {"order_id": "1077"}}}
    assert (tool_step.name, tool_step.args) == ("lookup_order", {"order_id": "1077"})
    assert tool_step.result["status"] == "in_transit"
    assert [row["tool"] for row in store.ledger.values()] == ["lookup_order"]

    # the model sees the rule's call and its result in the transcript
    [call] = model.calls
    assistant, tool_msg = call.messages[-2:]
    [tc] = assistant["tool_calls"]
    assert tc["id"] == "rule-lookup" and tc["function"]["name"] == "lookup_order"
    assert tool_msg["tool_call_id"] == "rule-lookup"
    assert json.loads(tool_msg["content"]) == {"ok": True, "result": tool_step.result}


def test_a_fixed_refund_above_the_approval_amount_still_escalates(
    agent, policy, model, store, journal
):
    args = {"order_id": "1042", "amount": 180.0, "reason": "broken on arrival"}
    policy.rules = [_rule(name="auto-refund", action="tool", tool="issue_refund", tool_args=args)]
    state = Engine(agent, policy, model, store).advance(new_run("Please refund order 1042"))

    assert model.calls == []
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.APPROVAL_REQUIRED
    [esc] = store.escalations
    assert (esc.proposed_tool, esc.proposed_args, esc.confidence) == ("issue_refund", args, 1.0)
    assert journal() == []
    assert store.ledger == {}

    # approved: the refund runs once, and the rule is not applied a second time
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="approve", operator="op")
    model.script(decision_reply("Your refund of $180 is on its way."))
    state = Engine(agent, policy, model, store).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert [(r["order_id"], r["amount"]) for r in journal()] == [("1042", 180.0)]
    assert len(store.steps_of(StepKind.RULE)) == 1
    assert len(model.calls) == 1


def test_an_escalate_rule_sends_the_task_to_a_human_before_any_model(
    agent, policy, model, store
):
    policy.rules = [_rule(name="refunds-to-humans", action="escalate",
                          question="Refunds are handled by a person. Take it?")]
    state = Engine(agent, policy, model, store).advance(new_run("I want a refund for 1001"))

    assert model.calls == []
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.RULE_MATCHED
    assert store.kinds() == ["retrieval", "rule", "escalation"]
    [esc] = store.escalations
    assert esc.reason == Reason.RULE_MATCHED
    assert esc.question == "Refunds are handled by a person. Take it?"
    assert (esc.proposed_tool, esc.proposed_args) == ("", {})
    assert esc.context == state.context

    # after the operator's reply the model decides; the rule is not checked again
    resumed = store.last_checkpoint()
    assert resumed.rules_checked is True
    resumed.human_input = HumanInput(decision="reply", message="Go ahead, it is fine.",
                                     operator="op")
    model.script(decision_reply("A refund for order 1001 has been requested."))
    state = Engine(agent, policy, model, store).advance(resumed)

    assert state.status == RunStatus.SUCCEEDED
    assert len(model.calls) == 1
    assert model.calls[0].messages[-1] == {
        "role": "user", "content": "Operator: Go ahead, it is fine."}
    assert len(store.steps_of(StepKind.RULE)) == 1
    assert len(store.escalations) == 1


def test_an_escalate_rule_without_a_question_names_the_rule(engine, store, policy):
    policy.rules = [_rule(name="refunds-to-humans", action="escalate")]
    engine.advance(new_run("refund please"))
    [esc] = store.escalations
    assert "refunds-to-humans" in esc.question
