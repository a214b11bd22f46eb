"""Turning a validated request into an OpenAI-shaped chat completion.

This is the pure core of the simulator: no sockets and no sleeping, so it is the place
to read to understand what a given conversation will get back.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from .brains import Decision, Reply, ToolCall, brain_for, read_conversation
from .faults import MALFORMED_CONTENT
from .models import SimModel
from .request import ChatRequest
from .responses import JsonResponse, openai_error
from .usage import CHARS_PER_TOKEN, PromptCache, completion_tokens, prompt_tokens, usage_block

SYSTEM_FINGERPRINT = "fp_llmsim"


def complete(
    request: ChatRequest, model: SimModel, cache: PromptCache, *, malformed: bool = False
) -> JsonResponse:
    """The completion for ``request``; ``malformed`` swaps the content for broken JSON."""
    prompt = prompt_tokens(request.messages, request.tools)
    if prompt > model.context_window:
        return openai_error(
            400,
            f"This model's maximum context length is {model.context_window} tokens. "
            f"However, your messages resulted in {prompt} tokens.",
            code="context_length_exceeded",
            param="messages",
        )

    conversation = read_conversation(request.messages)
    reply = _offered_only(brain_for(conversation.agent_slug)(conversation, model), request)
    content, tool_calls = _render(reply, request)
    if malformed:
        content, tool_calls = MALFORMED_CONTENT, []

    finish_reason = "tool_calls" if tool_calls else "stop"
    generated = completion_tokens(content, tool_calls)
    if request.max_tokens is not None and content and generated > request.max_tokens:
        content = content[: request.max_tokens * CHARS_PER_TOKEN]
        generated, finish_reason = request.max_tokens, "length"

    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body = {
        "id": f"chatcmpl-sim{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model.name,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": usage_block(
            prompt, generated, cache.cached_tokens(model.name, request.messages, request.tools)
        ),
    }
    return JsonResponse(200, body)


def _offered_only(reply: Reply, request: ChatRequest) -> Reply:
    """A model cannot call a tool it was not given; it asks for help instead."""
    if isinstance(reply, ToolCall) and reply.name not in request.tool_names:
        return Decision.ask(
            f"I need the {reply.name} tool to continue, but it is not available. "
            "How should I proceed?",
            0.2,
        )
    return reply


def _render(reply: Reply, request: ChatRequest) -> tuple[str | None, list[dict[str, Any]]]:
    """Message content and tool calls for a reply, in the format the request asked for."""
    if isinstance(reply, Decision):
        return (reply.as_json() if request.wants_json else reply.as_text()), []
    arguments = json.dumps(reply.arguments, separators=(",", ":"))
    return None, [
        {
            "id": _tool_call_id(request, reply.name, arguments),
            "type": "function",
            "function": {"name": reply.name, "arguments": arguments},
        }
    ]


def _tool_call_id(request: ChatRequest, name: str, arguments: str) -> str:
    """Derived from the conversation so the same conversation yields the same call id."""
    material = json.dumps([request.messages, name, arguments], sort_keys=True)
    return "call_" + hashlib.sha256(material.encode()).hexdigest()[:24]
