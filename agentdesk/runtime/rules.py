"""Deterministic rules, evaluated on the task input before any model is asked.

A rule that matches answers from a template, makes a fixed tool call, or sends the task
straight to a human — for the cases where a model adds cost and nothing else.
"""

from __future__ import annotations

import re
import string
from typing import Any

from .options import ConditionOp
from .state import RuleCondition, RuleSpec


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def condition_holds(cond: RuleCondition, task_input: dict[str, Any]) -> bool:
    value = _lookup(task_input, cond.field)
    if cond.op == ConditionOp.EXISTS:
        return value is not None
    if value is None:
        return False
    try:
        if cond.op == ConditionOp.EQUALS:
            return str(value).strip().lower() == str(cond.value).strip().lower()
        if cond.op == ConditionOp.CONTAINS:
            return str(cond.value).lower() in str(value).lower()
        if cond.op == ConditionOp.REGEX:
            return re.search(str(cond.value), str(value), re.IGNORECASE) is not None
        if cond.op == ConditionOp.GT:
            return float(value) > float(cond.value)
        if cond.op == ConditionOp.LT:
            return float(value) < float(cond.value)
    except (TypeError, ValueError, re.error):
        return False
    return False


def first_match(rules: list[RuleSpec], task_input: dict[str, Any]) -> RuleSpec | None:
    for rule in rules:
        if rule.conditions and all(condition_holds(c, task_input) for c in rule.conditions):
            return rule
    return None


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render_answer(template: str, task_input: dict[str, Any]) -> str:
    """``{message}``-style placeholders from the input; unknown ones render empty."""
    fields = _Blank({k: v for k, v in task_input.items() if isinstance(v, str | int | float)})
    try:
        return string.Formatter().vformat(template, (), fields)
    except (ValueError, IndexError):
        return template
