"""What a brain can decide to do: call a tool, or answer / ask with the decision object."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """Call function ``name`` with ``arguments`` (which include the model's confidence)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """The app's ``decision`` schema: a final answer or a clarifying question, and confidence."""

    answer: str | None
    question: str | None
    confidence: float

    @classmethod
    def final(cls, answer: str, confidence: float) -> Decision:
        return cls(answer=answer, question=None, confidence=confidence)

    @classmethod
    def ask(cls, question: str, confidence: float) -> Decision:
        return cls(answer=None, question=question, confidence=confidence)

    def as_json(self) -> str:
        """Content for a ``json_schema`` response: keys in schema order."""
        return json.dumps(
            {"answer": self.answer, "question": self.question, "confidence": self.confidence}
        )

    def as_text(self) -> str:
        """Content when no JSON was requested: just the answer or the question."""
        return self.answer if self.answer is not None else (self.question or "")


Reply = ToolCall | Decision
