"""What the gateway sends and reads for the confidence signals, against the simulator over
HTTP: ``logprobs: true`` only where the profile says the endpoint returns them, the
samples' temperature, and the token log-probabilities read back as generated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from agentdesk.llmsim import SimServer, start_in_thread
from agentdesk.runtime.gateway import OpenAIGateway
from agentdesk.runtime.llm import Sampling
from agentdesk.runtime.profiles import ModelProfile
from agentdesk.runtime.reply_reading import read_reply
from agentdesk.runtime.token_probability import decision_probability

PRICE = {"input_per_mtok": Decimal("0.15"), "cached_input_per_mtok": Decimal("0.075"),
         "output_per_mtok": Decimal("0.60")}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = start_in_thread(port=0, latency_scale=0, fault_timeout_s=2)
    yield server
    server.stop()


@pytest.fixture
def ask(sim, agent):
    gateway = OpenAIGateway(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=10)

    def call(task: str, sampling: Sampling, name: str = "sim-small", **fields):
        profile = ModelProfile(name=name, **PRICE, **fields)
        messages = [{"role": "system", "content": agent.system_prompt([])},
                    {"role": "user", "content": task}]
        reply = gateway.complete(profile=profile, messages=messages,
                                 tools=agent.tools.openai_schemas(), max_tokens=512,
                                 sampling=sampling)
        return reply, sim.app.recent_requests[-1]

    return call


def test_logprobs_are_asked_and_read_back_when_the_profile_returns_them(ask) -> None:
    reply, body = ask("Which order is late?", Sampling(logprobs=True), logprobs=True)
    assert body["logprobs"] is True and body["temperature"] == 0
    assert reply.logprobs and "".join(t.token for t in reply.logprobs) == reply.content
    assert all(t.logprob <= 0 and t.bytes == list(t.token.encode()) for t in reply.logprobs)
    probability = decision_probability(reply, tool=None)
    assert probability is not None and 0 < probability <= 1


def test_logprobs_are_not_sent_to_a_profile_without_them(ask) -> None:
    reply, body = ask("Which order is late?", Sampling(logprobs=True))
    assert "logprobs" not in body and reply.logprobs is None
    _, reasoning = ask("Which order is late?", Sampling(logprobs=True),
                       name="sim-small:reasoning", reasoning=True, logprobs=True)
    assert "logprobs" not in reasoning  # OpenAI refuses logprobs on reasoning models


def test_a_sample_is_sent_at_its_temperature(ask) -> None:
    _, body = ask("Where is order 1077?", Sampling(temperature=0.7))
    assert body["temperature"] == 0.7 and "logprobs" not in body
    _, reasoning = ask("Where is order 1077?", Sampling(temperature=0.7),
                       name="sim-small:reasoning", reasoning=True)
    assert "temperature" not in reasoning  # a reasoning model samples at its own


def _reply_with(logprobs) -> httpx.Response:
    body = {"choices": [{"message": {"role": "assistant", "content": '{"answer": "x"}'},
                         "logprobs": logprobs}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
    return httpx.Response(200, content=json.dumps(body),
                          headers={"content-type": "application/json"})


@pytest.mark.parametrize("logprobs", [
    None, {"content": None}, {"content": []},
    {"content": [{"token": '{"answer": "x"}', "logprob": "high"}]},
    {"content": [{"token": '{"answer": "x"}'}]},
])
def test_missing_or_unreadable_logprobs_are_none(logprobs) -> None:
    reply = read_reply(ModelProfile(name="m"), _reply_with(logprobs), messages=[], tools=[],
                       latency_ms=1)
    assert reply.logprobs is None


def test_bytes_that_are_not_bytes_are_dropped_but_the_token_kept() -> None:
    entry = {"token": '{"answer": "x"}', "logprob": -0.1, "bytes": [300]}
    reply = read_reply(ModelProfile(name="m"), _reply_with({"content": [entry]}), messages=[],
                       tools=[], latency_ms=1)
    assert reply.logprobs is not None and reply.logprobs[0].bytes is None
