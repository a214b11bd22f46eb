"""The HTTP surface: errors, model list, health, determinism, latency and concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from agentdesk.llmsim import SimServer, start_in_thread

from .conversation import REFUND_TOOLS, Chat


def test_unknown_model_is_404_with_openai_error_body(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        Chat(client, "Refund order 1042", model="gpt-9").step()
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found"
    assert "gpt-9" in caught.value.body["message"]


def test_invalid_request_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="sim-small", messages=[])
    assert caught.value.body["param"] == "messages"


def test_unparsable_body_is_400_openai_style(sim: SimServer) -> None:
    response = httpx.post(
        f"{sim.base_url}/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


def test_model_list_and_health(client: OpenAI, sim: SimServer) -> None:
    assert sorted(model.id for model in client.models.list()) == ["sim-large", "sim-small"]
    assert sim.base_url.endswith("/v1")
    assert httpx.get(f"{sim.root_url}/healthz").status_code == 200


def test_same_conversation_gets_the_same_reply(client: OpenAI) -> None:
    first = Chat(client, "Refund order 1042, it is broken").step()
    second = Chat(client, "Refund order 1042, it is broken").step()
    assert first.choices[0].message.model_dump() == second.choices[0].message.model_dump()

    answer_a = Chat(client, "Hello", agent="triage", tools=[]).step()
    answer_b = Chat(client, "Hello", agent="triage", tools=[]).step()
    assert answer_a.choices[0].message.content == answer_b.choices[0].message.content
    assert answer_a.id != answer_b.id, "completion ids stay unique like OpenAI's"


@pytest.fixture(scope="module")
def slow_sim() -> SimServer:
    server = start_in_thread(port=0, latency_scale=1.0)
    yield server
    server.stop()


def test_latency_follows_the_tier(slow_sim: SimServer) -> None:
    slow_client = OpenAI(base_url=slow_sim.base_url, api_key="sim", max_retries=0)
    timings = {}
    for model in ("sim-small", "sim-large"):
        started = time.monotonic()
        Chat(slow_client, "Refund order 1042", model=model).step()
        timings[model] = time.monotonic() - started
    assert 0.15 <= timings["sim-small"] < timings["sim-large"]
    assert timings["sim-large"] >= 0.6


def test_200_concurrent_calls_overlap(slow_sim: SimServer) -> None:
    async def run() -> list[str]:
        async with AsyncOpenAI(base_url=slow_sim.base_url, api_key="sim", max_retries=0) as aio:
            calls = [
                aio.chat.completions.create(
                    model="sim-small",
                    messages=[
                        {"role": "system", "content": "You are the support-refunds agent."},
                        {"role": "user", "content": f"Refund order {10000 + i}"},
                    ],
                    tools=REFUND_TOOLS,
                )
                for i in range(200)
            ]
            done = await asyncio.gather(*calls)
        return [c.choices[0].message.tool_calls[0].function.name for c in done]

    started = time.monotonic()
    names = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert names == ["lookup_order"] * 200
    assert elapsed < 6.0, f"200 x 150 ms took {elapsed:.1f}s: calls are not overlapping"


def test_stop_ends_a_stalled_call_and_releases_the_port() -> None:
    server = start_in_thread(port=0, latency_scale=0, fault_timeout_s=60)
    stalled = OpenAI(base_url=server.base_url, api_key="sim", max_retries=0, timeout=30)
    outcome: list[Exception] = []

    def call() -> None:
        try:
            Chat(stalled, "Refund order 1042 [sim-fault:timeout]").step()
        except Exception as exc:  # recorded for the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5.0
    assert not server.is_running
    worker.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], openai.InternalServerError)
    assert outcome[0].status_code == 503
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.root_url}/healthz")
