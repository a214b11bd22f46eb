"""Usage accounting, including simulated prompt caching, as seen by the openai client."""

from __future__ import annotations

import math

from openai import OpenAI

from .conversation import Chat

LONG_POLICY = "Refund policy clause: items may be returned within 30 days. " * 120


def test_usage_fields_are_consistent(client: OpenAI) -> None:
    completion = Chat(client, "Say hi", agent="usage-check", tools=[]).step()
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == math.ceil(len(completion.choices[0].message.content) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_prompt_tokens_grow_with_content_and_tools(client: OpenAI) -> None:
    short = Chat(client, "Order 1042?", agent="usage-a", tools=[]).step()
    longer = Chat(client, "Order 1042? " + "x" * 400, agent="usage-a", tools=[]).step()
    with_tools = Chat(client, "Order 1042?", agent="usage-a").step()
    assert longer.usage.prompt_tokens >= short.usage.prompt_tokens + 100
    assert with_tools.usage.prompt_tokens > short.usage.prompt_tokens


def test_repeated_long_prefix_is_cached_in_128_token_steps(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 1042")
    chat.messages[0]["content"] += "\n" + LONG_POLICY
    first = chat.step()
    assert first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details.cached_tokens == 0

    chat.tool_result(first, {"ok": False, "error": "timeout talking to the order system"})
    second = chat.step()
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached == first.usage.prompt_tokens // 128 * 128
    assert cached % 128 == 0 and cached >= 1024
    assert cached < second.usage.prompt_tokens


def test_short_prefixes_are_never_cached(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 3131")
    first = chat.step()
    assert first.usage.prompt_tokens < 1024
    again = Chat(client, "Refund order 3131").step()
    assert again.usage.prompt_tokens_details.cached_tokens == 0


def test_a_different_system_prompt_misses_the_cache(client: OpenAI) -> None:
    first = Chat(client, "Refund order 4242")
    first.messages[0]["content"] += "\n" + LONG_POLICY + "variant A"
    first.step()
    other = Chat(client, "Refund order 4242")
    other.messages[0]["content"] += "\n" + LONG_POLICY + "variant B"
    assert other.step().usage.prompt_tokens_details.cached_tokens == 0
