"""Builds conversations in the app's protocol and plays the model's turns through openai."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletion

DECISION_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "decision",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "answer": {"type": ["string", "null"]},
                "question": {"type": ["string", "null"]},
                "confidence": {"type": "number"},
            },
            "required": ["answer", "question", "confidence"],
            "additionalProperties": False,
        },
    },
}


def function_tool(name: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool whose parameters include the mandatory ``confidence``."""
    properties = {**properties, "confidence": {"type": "number", "minimum": 0, "maximum": 1}}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


REFUND_TOOLS = [
    function_tool("search_policy", query={"type": "string"}),
    function_tool("lookup_order", order_id={"type": "string"}),
    function_tool(
        "issue_refund",
        order_id={"type": "string"},
        amount={"type": "number"},
        reason={"type": "string"},
    ),
]

ORDER_1042 = {
    "order_id": "1042",
    "status": "delivered",
    "total": 180.0,
    "currency": "USD",
    "items": [{"sku": "KB-1", "name": "Keyboard"}, {"sku": "MS-2", "name": "Mouse"}],
    "customer": "Dana Example",
}


@dataclass
class Chat:
    """One agent conversation; ``step`` asks the simulator for the next assistant turn."""

    client: OpenAI
    task: str
    agent: str = "support-refunds"
    model: str = "sim-large"
    tools: list[dict[str, Any]] = field(default_factory=lambda: list(REFUND_TOOLS))
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.messages = [
            {"role": "system", "content": f"You are the {self.agent} agent. Help the customer."},
            {"role": "user", "content": self.task},
        ]

    def step(self, **overrides: Any) -> ChatCompletion:
        """Request the next turn and append the assistant message to the conversation."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "response_format": DECISION_FORMAT,
        }
        if self.tools:
            kwargs["tools"] = self.tools
        completion = self.client.chat.completions.create(**{**kwargs, **overrides})
        self.messages.append(completion.choices[0].message.model_dump(exclude_none=True))
        return completion

    def tool_result(self, completion: ChatCompletion, payload: dict[str, Any]) -> None:
        """Answer the completion's (single) tool call with the app's ``{"ok": ...}`` envelope."""
        call = only_tool_call(completion)
        self.messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(payload)}
        )

    def operator(self, text: str) -> None:
        self.messages.append({"role": "user", "content": f"Operator: {text}"})


def only_tool_call(completion: ChatCompletion) -> Any:
    """The one tool call of a completion (fails the test if there is not exactly one)."""
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    calls = choice.message.tool_calls or []
    assert len(calls) == 1, calls
    assert calls[0].type == "function"
    return calls[0]


def call_args(completion: ChatCompletion) -> tuple[str, dict[str, Any]]:
    """Name and decoded arguments of the completion's single tool call."""
    call = only_tool_call(completion)
    return call.function.name, json.loads(call.function.arguments)


def decision(completion: ChatCompletion) -> dict[str, Any]:
    """The decision object a non-tool turn carries as JSON content."""
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice
    assert not choice.message.tool_calls
    assert choice.message.content is not None
    return json.loads(choice.message.content)
