"""What a shipped agent is to the runtime: instructions, a retriever and its tools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .tools import ToolRegistry


@dataclass(frozen=True)
class AgentSpec:
    slug: str
    name: str
    instructions: str
    input_model: type[BaseModel]
    tools: ToolRegistry
    retrieve: Callable[[dict[str, Any]], list[dict[str, Any]]]

    def system_prompt(self, context: list[dict[str, Any]]) -> str:
        """The system message; it starts with the slug so any endpoint can tell agents apart."""
        parts = [f"You are the {self.slug} agent.", self.instructions.strip()]
        if context:
            parts.append("Relevant knowledge (retrieved before reasoning):")
            parts.extend(f"[{doc['source']}] {doc['text']}" for doc in context)
        return "\n\n".join(parts)

    def task_message(self, task_input: dict[str, Any]) -> str:
        message = task_input.get("message")
        return message if isinstance(message, str) else str(task_input)
