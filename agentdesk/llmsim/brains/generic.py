"""Fallback brain for agents without a scenario: use the best-matching tool once, then report.

A new agent (scaffolded with ``startagent``, or defined in admin) has no scenario here, and
the simulator must not know what it is for. It can still exercise the agent end to end the
way a plain model would, deterministically, from what the request says:

1. tools offered and none called yet → call the tool whose name and description share the
   most words with the task (at least one), with its required arguments filled from the
   task: ``name=value`` / ``name: value`` in the text, else the task's numbers for number
   and integer fields (a pattern-checked string takes a word that fits the pattern), else
   the task itself for a string field; confidence 0.85;
2. after the tool's result → a short summary of it as the answer (0.9);
3. after the tool's error → ask the operator how to proceed (0.2: a human decides), and
   once an operator answered: call the tool again if the answer gives ``name=value``
   arguments for it, else report the failure with the operator's answer;
4. no tools, or none that matches → echo the latest user message (the old behaviour, which
   smoke-tests an agent without tools).

Which tools were offered is read from ``Conversation.tools`` (OpenAI function tools; the
request's ``tools``, or those the prompted protocol describes in the system message). A
conversation without that field is read as offering none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..models import SimModel
from .conversation import Conversation, ToolExchange
from .replies import Decision, Reply, ToolCall

ECHO_CONFIDENCE = 0.9
CALL_CONFIDENCE = 0.85
SUMMARY_CONFIDENCE = 0.9
ASK_CONFIDENCE = 0.2
SUMMARY_CHARS = 300

_WORD_RE = re.compile(r"[a-z0-9]+")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")
_VALUE = r"(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[^\s,;]+))"
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Words that say nothing about what a tool does, so a match on them is no match.
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "could", "do", "does", "for",
    "from", "get", "give", "have", "has", "he", "her", "his", "how", "i", "if", "in", "into",
    "is", "it", "its", "me", "my", "of", "on", "or", "our", "please", "she", "so", "that",
    "the", "their", "them", "then", "there", "this", "to", "tool", "up", "us", "was", "we",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
})


@dataclass(frozen=True)
class OfferedTool:
    """A function tool as the request offers it."""

    name: str
    description: str
    parameters: dict[str, Any]

    @classmethod
    def from_openai(cls, tool: dict[str, Any]) -> OfferedTool | None:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return None
        parameters = function.get("parameters")
        return cls(function["name"], str(function.get("description") or ""),
                   parameters if isinstance(parameters, dict) else {})

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props = self.parameters.get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: spec if isinstance(spec, dict) else {} for name, spec in props.items()
                if name != "confidence"}

    @property
    def required(self) -> list[str]:
        required = self.parameters.get("required")
        names = required if isinstance(required, list) else []
        return [n for n in names if isinstance(n, str) and n in self.properties]


def reply(conversation: Conversation, model: SimModel) -> Reply:
    """The next step for an agent the simulator has no scenario for (see the module)."""
    offered = getattr(conversation, "tools", ()) or ()
    return reply_with_tools(conversation, [t for t in map(OfferedTool.from_openai, offered)
                                           if t is not None])


def reply_with_tools(conversation: Conversation, tools: Sequence[OfferedTool]) -> Reply:
    """The brain as a pure function of the conversation and the tools it offers."""
    done = [e for e in conversation.exchanges if e.result is not None]
    if done:
        return _after(conversation, done[-1], tools)
    tool = best_tool(conversation.task, tools)
    if tool is None:
        return Decision.final(conversation.latest_user_text or conversation.task,
                              ECHO_CONFIDENCE)
    return ToolCall(tool.name, {**arguments_for(tool, conversation.task),
                                "confidence": CALL_CONFIDENCE})


def _after(conversation: Conversation, last: ToolExchange, tools: Sequence[OfferedTool]
           ) -> Reply:
    """What follows the latest tool result: a summary, or a question about the failure."""
    assert last.result is not None
    if last.result.ok:
        return Decision.final(summarize(last.name, last.result.result), SUMMARY_CONFIDENCE)
    operator = conversation.latest_operator
    if operator is None or operator.index < last.result.index:
        return Decision.ask(f"{last.name} failed: {last.result.error}. How should I proceed?",
                            ASK_CONFIDENCE)
    tool = next((t for t in tools if t.name == last.name), None)
    given = explicit_values(tool, operator.text) if tool is not None else {}
    if tool is not None and given:  # the operator supplied arguments: try once more with them
        args = {k: v for k, v in last.arguments.items() if k != "confidence"}
        return ToolCall(tool.name, {**args, **given, "confidence": CALL_CONFIDENCE})
    if (last.result.error or "").startswith("rejected by operator"):
        return Decision.final(f"I did not run {last.name}: an operator rejected it "
                              f"({operator.text}).", SUMMARY_CONFIDENCE)
    return Decision.final(f"{last.name} failed ({last.result.error}). Operator: "
                          f"{operator.text}", SUMMARY_CONFIDENCE)


# -- choosing the tool ---------------------------------------------------------------------


def words(text: str) -> set[str]:
    """Content words of ``text``: lower case, identifiers split (``create_ticket``,
    ``createTicket``), stop words dropped, a plural ``s`` removed."""
    spaced = _CAMEL_RE.sub(" ", text).replace("_", " ").replace("-", " ").replace(".", " ")
    out = set()
    for word in _WORD_RE.findall(spaced.lower()):
        if word in STOP_WORDS or word.isdigit():
            continue
        out.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss")
                else word)
    return out


def best_tool(task: str, tools: Sequence[OfferedTool]) -> OfferedTool | None:
    """The tool sharing the most words with the task (a word of its name counts double);
    None when no tool shares one. Ties go to the tool offered first."""
    wanted = words(task)
    best: tuple[int, OfferedTool] | None = None
    for tool in tools:
        name_words = words(tool.name)
        score = 2 * len(wanted & name_words) + len(wanted & (words(tool.description)
                                                             - name_words))
        if score > 0 and (best is None or score > best[0]):
            best = (score, tool)
    return best[1] if best else None


# -- filling its arguments -----------------------------------------------------------------


def arguments_for(tool: OfferedTool, task: str) -> dict[str, Any]:
    """The required arguments (and any optional one the task names) filled from the task."""
    args = explicit_values(tool, task)
    numbers = [n for n in _NUMBER_RE.findall(task) if n not in map(str, args.values())]
    for name in tool.required:
        if name in args:
            continue
        value = _implicit_value(tool.properties[name], task, numbers)
        if value is not None:
            args[name] = value
    return args


def explicit_values(tool: OfferedTool, text: str) -> dict[str, Any]:
    """Arguments written out as ``name=value`` or ``name: value`` (``value`` may be quoted;
    ``order_id`` may be written ``order id``), converted to the field's type."""
    found: dict[str, Any] = {}
    for name, spec in tool.properties.items():
        key = "|".join(re.escape(v) for v in dict.fromkeys((name, name.replace("_", " "))))
        match = re.search(rf"(?<!\w)(?:{key})\s*[:=]\s*" + _VALUE, text, re.IGNORECASE)
        if match is None:
            continue
        raw = next(g for g in (match["dq"], match["sq"], match["bare"]) if g is not None)
        value = _typed(raw.rstrip(".!?") if match["bare"] else raw, spec)
        if value is not None:
            found[name] = value
    return found


def _types(spec: dict[str, Any]) -> list[str]:
    kind = spec.get("type")
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    if isinstance(kind, str):
        return [kind]
    options = spec.get("anyOf") or spec.get("oneOf") or []
    return [k for option in options if isinstance(option, dict) for k in _types(option)]


def _typed(raw: str, spec: dict[str, Any]) -> Any:
    """``raw`` as the field's type; None when it cannot be one."""
    types = _types(spec) or ["string"]
    for kind in types:
        try:
            if kind == "integer":
                return int(float(raw)) if float(raw).is_integer() else None
            if kind == "number":
                number = float(raw)
                return int(number) if number.is_integer() and "." not in raw else number
        except ValueError:
            continue
        if kind == "boolean" and raw.lower() in {"true", "false", "yes", "no"}:
            return raw.lower() in {"true", "yes"}
        if kind == "string":
            return raw
    return None


def _implicit_value(spec: dict[str, Any], task: str, numbers: list[str]) -> Any:
    """A value for a required field the task does not name: an enum value it mentions (else
    the first), the next number for a number field, a word that fits a string's pattern,
    else the task itself (cut to ``maxLength``)."""
    types = _types(spec) or ["string"]
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        lowered = task.lower()
        return next((v for v in enum if str(v).lower() in lowered), enum[0])
    if "integer" in types or "number" in types:
        while numbers:
            value = _typed(numbers.pop(0), spec)
            if value is not None:
                return value
        return None
    if "string" in types:
        pattern = spec.get("pattern")
        if isinstance(pattern, str):
            try:
                fits = [w for w in re.findall(r"[^\s,;:!?]+", task) if re.search(pattern, w)]
            except re.error:
                fits = []
            if fits:
                return fits[0]
        limit = spec.get("maxLength")
        return task[:limit] if isinstance(limit, int) and limit > 0 else task
    if "array" in types:
        items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
        return [task] if "string" in (_types(items) or ["string"]) else None
    if "boolean" in types:
        return False
    return None


# -- reporting -----------------------------------------------------------------------------


def summarize(tool: str, result: Any) -> str:
    """A short answer that says what the tool returned (the agent's answer to the task)."""
    if isinstance(result, dict) and result:
        parts = [f"{key}: {_scalar(value)}" for key, value in result.items()]
        text = f"{tool} returned {'; '.join(parts)}."
    elif result in (None, {}, [], ""):
        text = f"{tool} finished with no result."
    else:
        text = f"{tool} returned {_scalar(result)}."
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1].rstrip() + "…"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) > 3:
        return f"{len(value)} items"
    return json.dumps(value, default=str)
