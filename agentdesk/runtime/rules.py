"""Deterministic rules, evaluated on the task input before any model is asked.

A rule that matches answers from a template, makes a fixed tool call, or sends the task
straight to a human — for the cases where a model adds cost and nothing else.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection
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


# What an answer template may fill in: text and number values of the task input.
PLACEHOLDER_TYPES = frozenset({"string", "integer", "number"})


def placeholders(input_schema: dict[str, Any]) -> list[str]:
    """The names an answer template may use: the input schema's top-level text and number
    properties (optional ones too), sorted. Lists, objects and booleans are not."""
    names = []
    for name, prop in (input_schema.get("properties") or {}).items():
        options = prop.get("anyOf") or prop.get("oneOf") or [prop]
        kinds = {t for option in options for t in _types(option)} - {"null"}
        if kinds and kinds <= PLACEHOLDER_TYPES:
            names.append(name)
    return sorted(names)


def _types(option: dict[str, Any]) -> list[str]:
    kind = option.get("type")
    return kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else ["?"]


def template_errors(template: str, allowed: Collection[str]) -> list[str]:
    """Why ``template`` cannot be sent as it is: one message per bad placeholder.

    Only plain ``{name}`` placeholders of ``allowed`` names are filled; ``{{`` and ``}}``
    are literal braces. Positions, attribute or index access, conversions and format specs
    are refused, so what an admin saves is what a customer reads."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"malformed template ({exc}); write {{{{ and }}}} for literal braces"]
    errors = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        shown = "{" + name + suffix + "}"
        if name == "" or name.isdigit():
            errors.append(f"{shown}: positional placeholders are not allowed")
        elif "." in name or "[" in name:
            errors.append(f"{shown}: attribute or index access is not allowed")
        elif not name.isidentifier() or name not in allowed:
            errors.append(f"{shown}: unknown placeholder")
        elif spec or conversion:
            errors.append(f"{shown}: write the plain placeholder {{{name}}}")
    return errors


def render_answer(template: str, task_input: dict[str, Any]) -> str:
    """Fill plain ``{name}`` placeholders from the input's text and number values.

    Substitution is done here, not by ``str.format``: a placeholder with a position,
    attribute or index access, a conversion or a format spec is never evaluated (it renders
    empty, like an unknown name), so even a template that slipped past admin cannot reach
    into Python objects. A malformed template is sent as it is."""
    values = {k: v for k, v in task_input.items()
              if isinstance(v, str | int | float) and not isinstance(v, bool)}
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return template
    out = []
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name and name.isidentifier() and not spec and not conversion and name in values:
            out.append(str(values[name]))
    return "".join(out)
