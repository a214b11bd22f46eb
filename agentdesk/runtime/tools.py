"""The tool registry: typed tools the model may call, described to it as OpenAI functions.

Arguments are pydantic models, so a model-proposed call is validated before anything runs.
Every schema handed to the model gains a required ``confidence`` field: it is how the
model says how sure it is that *this* call is right, which the loop compares with the
policy's threshold before acting.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError


class ToolError(Exception):
    """A tool failed. The failure is recorded as is; the agent never sees invented output."""


@dataclass(frozen=True)
class ToolContext:
    run_id: str
    idempotency_key: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[ToolContext, Any], dict[str, Any]]
    side_effect: bool = False

    def validate(self, args: dict[str, Any]) -> BaseModel:
        return self.args_model.model_validate(args)

    def openai_schema(self) -> dict[str, Any]:
        params = copy.deepcopy(self.args_model.model_json_schema())
        params.setdefault("properties", {})["confidence"] = {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "How sure you are that this call is the right next action (0-1).",
        }
        params["required"] = [*params.get("required", []), "confidence"]
        params.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def tool(
        self, *, args: type[BaseModel], side_effect: bool = False, name: str | None = None
    ) -> Callable[[Callable[[ToolContext, Any], dict[str, Any]]], Tool]:
        """Decorator: register ``fn(ctx, args) -> dict`` under its name."""

        def register(fn: Callable[[ToolContext, Any], dict[str, Any]]) -> Tool:
            tool = Tool(
                name=name or fn.__name__,
                description=(fn.__doc__ or "").strip(),
                args_model=args,
                fn=fn,
                side_effect=side_effect,
            )
            self.tools[tool.name] = tool
            return tool

        return register

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def openai_schemas(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        chosen = names if names is not None else list(self.tools)
        return [self.tools[n].openai_schema() for n in chosen]


def run_tool(tool: Tool, ctx: ToolContext, raw_args: dict[str, Any]) -> dict[str, Any]:
    """Validate and call a tool; any failure becomes a ``ToolError`` with a clear message."""
    try:
        parsed = tool.validate(raw_args)
    except ValidationError as exc:
        raise ToolError(
            f"invalid arguments for {tool.name}: {exc.errors(include_url=False)}"
        ) from None
    try:
        return tool.fn(ctx, parsed)
    except ToolError:
        raise
    except Exception as exc:  # a tool's bug is a tool failure, not a crashed worker
        raise ToolError(f"{tool.name} raised {type(exc).__name__}: {exc}") from exc
