"""What an agent is to the runtime: instructions, an input schema, tools and knowledge.

An ``AgentSpec`` is the whole of an agent: a package defines one in code (found through
``AGENTDESK_AGENTS`` or the ``agentdesk.agents`` entry points), and an agent defined in
admin is turned into one when it runs. The input is described either by a pydantic model
(code) or by a JSON schema (admin); ``validate_input`` checks both the same way and
reports problems by field, so a submission gets the same errors from either.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from .tools import ToolRegistry

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
# An agent that declares no input takes one message, like a chat.
DEFAULT_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"message": {"type": "string", "minLength": 1, "maxLength": 4000,
                               "title": "Message"}},
    "required": ["message"],
    "additionalProperties": False,
}


def knowledge_block(context: list[dict[str, Any]]) -> str:
    """The retrieved passages as the system prompt shows them (after the instructions).
    Its own function because storage relies on it too: ``runs.checkpoints`` keeps the
    passages once, in the context, and puts this back on the prompt when it loads."""
    return "\n\n".join(["Relevant knowledge (retrieved before reasoning):",
                        *(f"[{doc['source']}] {doc['text']}" for doc in context)])


class InputRejected(Exception):
    """The task input does not match the agent's schema; ``fields`` says where and why."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("The input does not match the agent's schema.")
        self.fields = fields


@dataclass(frozen=True, eq=False)
class AgentSpec:
    slug: str
    name: str
    instructions: str
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    input_model: type[BaseModel] | None = None  # the task input as a pydantic model, or …
    input_schema: dict[str, Any] | None = None  # … as a JSON schema (default: one message)
    knowledge_dir: Path | None = None  # documents the package ships, indexed for its runs
    retrieval_limit: int = 3  # passages retrieved before the first model call
    query: Callable[[dict[str, Any]], str] | None = None  # input → search query (default:
    # the task message)

    def __post_init__(self) -> None:
        if not SLUG.match(self.slug):
            raise ValueError(f"agent slug {self.slug!r}: use lower-case letters, digits and "
                             "dashes or underscores (at most 50), starting with a letter or digit")
        if self.input_model is not None and self.input_schema is not None:
            raise ValueError(f"agent {self.slug!r}: give input_model or input_schema, not both")
        if self.input_schema is not None:
            jsonschema.Draft202012Validator.check_schema(self.input_schema)

    # -- input -------------------------------------------------------------------------

    def input_json_schema(self) -> dict[str, Any]:
        if self.input_model is not None:
            return self.input_model.model_json_schema()
        return self.input_schema if self.input_schema is not None else DEFAULT_INPUT_SCHEMA

    def validate_input(self, task_input: dict[str, Any]) -> dict[str, Any]:
        """The input as the agent will see it; InputRejected names each bad field."""
        if self.input_model is not None:
            try:
                return self.input_model.model_validate(task_input).model_dump(mode="json")
            except ValidationError as exc:
                fields: dict[str, list[str]] = {}
                for err in exc.errors(include_url=False):
                    name = ".".join(str(p) for p in err["loc"])
                    fields.setdefault(name, []).append(err["msg"])
                raise InputRejected(fields) from None
        validator = jsonschema.Draft202012Validator(self.input_json_schema())
        problems = sorted(validator.iter_errors(task_input), key=lambda e: list(e.path))
        if problems:
            fields = {}
            for err in problems:
                name = ".".join(str(p) for p in err.absolute_path)
                fields.setdefault(name, []).append(err.message)
            raise InputRejected(fields)
        return task_input

    # -- prompts -----------------------------------------------------------------------

    def system_prompt(self, context: list[dict[str, Any]]) -> str:
        """The system message; it starts with the slug so any endpoint can tell agents apart."""
        parts = [f"You are the {self.slug} agent.", self.instructions.strip()]
        if context:
            parts.append(knowledge_block(context))
        return "\n\n".join(parts)

    def task_message(self, task_input: dict[str, Any]) -> str:
        message = task_input.get("message")
        return message if isinstance(message, str) else str(task_input)

    def search_query(self, task_input: dict[str, Any]) -> str:
        return self.query(task_input) if self.query is not None else self.task_message(task_input)
