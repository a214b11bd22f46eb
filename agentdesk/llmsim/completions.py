"""Turning a validated request into an OpenAI-shaped chat completion.

This is the pure core of the simulator: no sockets and no sleeping, so it is the place
to read to understand what a given conversation will get back. What the brain decides
goes through the declared error model (``error_model``): the self-reported confidence,
the token log-probabilities and the samples at temperature > 0 all come from there.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from typing import Any

from .brains import Decision, Reply, ToolCall, brain_for, read_conversation
from .brains.prompted import asks_for_json, call_content, described_tools, offered_tools
from .error_model import GREEDY, ErrorModel, Sample, answer, confidence_of, request_key
from .faults import MALFORMED_CONTENT
from .models import SimModel
from .modes import Mode
from .request import ChatRequest
from .responses import JsonResponse, openai_error
from .strict import llama_error
from .usage import (
    CHARS_PER_TOKEN,
    PromptCache,
    completion_tokens,
    content_text,
    prompt_tokens,
    reasoning_tokens,
    usage_block,
)

SYSTEM_FINGERPRINT = "fp_llmsim"


def complete(
    request: ChatRequest, model: SimModel, cache: PromptCache, *, malformed: bool = False,
    sample: Sample = GREEDY, errors: ErrorModel | None = None,
) -> JsonResponse:
    """The completion for ``request``; ``malformed`` swaps the content for broken JSON.
    ``sample`` says which draw of the model this is (see ``error_model``)."""
    prompt = prompt_tokens(request.messages, request.tools)
    if prompt > model.context_window:
        return _context_overflow(model, prompt)

    system = _system_text(request)
    prompted = offered_tools(system) if not request.tools else frozenset()
    offered = [t for t in request.tools if t["function"]["name"] in request.tool_names] \
        if request.tools else described_tools(system)
    conversation = read_conversation(request.messages, tools=offered)
    answered = answer(brain_for(conversation.agent_slug), conversation, model, sample, errors)
    reply = _offered_only(_forced(answered.reply, request), request.tool_names | prompted)
    token_probability = answered.token_probability if reply is answered.reply \
        else confidence_of(reply)
    content, tool_calls = _render(reply, request, prompted=prompted, system=system)
    if malformed:
        content, tool_calls = MALFORMED_CONTENT, []

    finish_reason = "tool_calls" if tool_calls else "stop"
    generated = completion_tokens(content, tool_calls)
    reasoning = reasoning_tokens(request.reasoning_effort) if Mode.REASONING in model.modes \
        else 0
    budget = request.max_tokens
    if budget is not None and reasoning >= budget:  # thinking used it all: nothing visible
        content, tool_calls, generated, reasoning = "", [], 0, budget
        finish_reason = "length"
    elif budget is not None and content and generated > budget - reasoning:
        content = content[: (budget - reasoning) * CHARS_PER_TOKEN]
        generated, finish_reason = budget - reasoning, "length"

    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    logprobs = token_logprobs(content, token_probability) if request.logprobs else None
    body = {
        "id": f"chatcmpl-sim{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model.name,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {"index": 0, "message": message, "logprobs": logprobs,
             "finish_reason": finish_reason}
        ],
        "usage": usage_block(
            prompt, generated + reasoning,
            cache.cached_tokens(model.name, request.messages, request.tools), reasoning,
        ),
    }
    return JsonResponse(200, body)


def _context_overflow(model: SimModel, prompt: int) -> JsonResponse:
    """OpenAI's 400 for a prompt over the window, or llama.cpp's in ``json-object`` mode."""
    if Mode.JSON_OBJECT in model.modes:
        return llama_error("the request exceeds the available context size, try increasing it",
                           type_="exceed_context_size_error", n_prompt_tokens=prompt,
                           n_ctx=model.context_window)
    return openai_error(
        400,
        f"This model's maximum context length is {model.context_window} tokens. "
        f"However, your messages resulted in {prompt} tokens.",
        code="context_length_exceeded",
        param="messages",
    )


def _system_text(request: ChatRequest) -> str:
    first = request.messages[0] if request.messages else {}
    return content_text(first.get("content")) if first.get("role") in {"system", "developer"} \
        else ""


def _forced(reply: Reply, request: ChatRequest) -> Reply:
    """``tool_choice`` "required" or naming a function obliges a call, as OpenAI's does:
    the forced tool (or the first one) is called with what the brain has, i.e. nothing."""
    choice = request.tool_choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
    elif choice == "required" and request.tools:
        name = request.tools[0]["function"]["name"]
    else:
        return reply
    if isinstance(reply, ToolCall) and reply.name == name:
        return reply
    return ToolCall(str(name), {"confidence": confidence_of(reply)})


def _offered_only(reply: Reply, offered: frozenset[str]) -> Reply:
    """A model cannot call a tool it was not given; it asks for help instead."""
    if isinstance(reply, ToolCall) and reply.name not in offered:
        return Decision.ask(
            f"I need the {reply.name} tool to continue, but it is not available. "
            "How should I proceed?",
            0.2,
        )
    return reply


def _render(
    reply: Reply, request: ChatRequest, *, prompted: frozenset[str], system: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """Message content and tool calls for a reply, in the format the request asked for.

    Asked for JSON in the instructions only (no ``response_format``), the model answers
    the way chatty models do: the object after a sentence, a tool call in a fence."""
    bare = request.wants_json
    if isinstance(reply, Decision):
        if bare:
            return reply.as_json(), []
        if asks_for_json(system):
            return f"Here is my reply:\n{reply.as_json()}", []
        return reply.as_text(), []
    if reply.name in prompted:
        return call_content(reply.name, reply.arguments, fenced=not bare), []
    arguments = json.dumps(reply.arguments, separators=(",", ":"))
    return None, [
        {
            "id": _tool_call_id(request, reply.name, arguments),
            "type": "function",
            "function": {"name": reply.name, "arguments": arguments},
        }
    ]


def content_key(request: ChatRequest) -> str:
    """What makes two requests identical (sampling knobs aside): the model asked, the
    messages, the tools and the format; ``SampleCounter`` numbers identical samples."""
    return request_key(request.model, request.messages, request.tools, request.tool_choice,
                       request.response_format)


SURE_TOKEN_LOGPROB = -1e-5
"""Log-probability of every token but the decisive one: near certain, as most tokens are."""
_DECISION_MARKERS = ('"answer": ', '"tool": ')


def token_logprobs(content: str | None, probability: float) -> dict[str, Any]:
    """``logprobs`` for ``content``, one entry per simulated token (the text cut every
    ``CHARS_PER_TOKEN`` characters), like llama.cpp's for everything generated as content.

    The decision's doubt sits on one token, as with a real model, where a few tokens (a
    tool's name, an answer's first word) carry the choice and the rest follow from it: the
    token where the value of ``"answer"`` (the decision JSON) or of ``"tool"`` (a prompted
    tool call) starts, else the first token, has log-probability ``log(probability)``;
    every other token ``SURE_TOKEN_LOGPROB``. So both the joint probability of the
    decision's tokens and their lowest probability are ≈ ``probability``, the error
    model's token signal. A native tool call has no content, hence no entries, as with
    OpenAI."""
    text = content or ""
    tokens = [text[i:i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]
    starts = [text.find(m) + len(m) for m in _DECISION_MARKERS if m in text]
    decisive = min(starts) // CHARS_PER_TOKEN if starts else 0
    doubt = math.log(min(max(probability, 1e-6), 1.0))
    return {"content": [{"token": token,
                         "logprob": doubt if i == decisive else SURE_TOKEN_LOGPROB,
                         "bytes": list(token.encode()), "top_logprobs": []}
                        for i, token in enumerate(tokens)], "refusal": None}


def _tool_call_id(request: ChatRequest, name: str, arguments: str) -> str:
    """Derived from the conversation so the same conversation yields the same call id."""
    material = json.dumps([request.messages, name, arguments], sort_keys=True)
    return "call_" + hashlib.sha256(material.encode()).hexdigest()[:24]
