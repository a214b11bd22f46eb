"""The ``support-refunds`` demo agent: answers order questions and issues refunds."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from agentdesk.runtime.agent import AgentSpec

from .tools import registry

MAX_MESSAGE_CHARS = 4000


class SupportRequest(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


INSTRUCTIONS = """
You help customers of an online shop with their orders. Look the order up before you act.
Issue a refund only when the customer asks for one, for at most the order total. When the
request is unclear, ask one short question instead of guessing. Reply with a short answer
for the customer once the task is done.
"""


AGENT = AgentSpec(
    slug="support-refunds",
    name="Support: refunds",
    instructions=INSTRUCTIONS,
    input_model=SupportRequest,
    tools=registry,
    knowledge_dir=Path(__file__).parent / "knowledge",
)
