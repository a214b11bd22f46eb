"""Fault injection, observed through the openai client's own errors and retries.

Fault counters live as long as the server and are keyed by the first user message, so
every test here uses a task text of its own.
"""

from __future__ import annotations

import json
import time

import openai
import pytest
from openai import OpenAI

from agentdesk.llmsim import SimServer, start_in_thread

from .conversation import Chat, call_args, decision


def test_429_once_is_absorbed_by_the_clients_own_retry(sim: SimServer) -> None:
    retrying = OpenAI(base_url=sim.base_url, api_key="sim", max_retries=2, timeout=10)
    started = time.monotonic()
    completion = Chat(retrying, "Refund order 1042 [sim-fault:429x1]").step()
    assert call_args(completion)[0] == "lookup_order"
    assert time.monotonic() - started < 1.0, "retry-after-ms (50 ms) should set the pace"


def test_429_shape_and_headers(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 2042 [sim-fault:429x1]")
    with pytest.raises(openai.RateLimitError) as caught:
        chat.step()
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["retry-after-ms"] == "50"
    assert error.body["code"] == "rate_limit_exceeded"

    assert call_args(chat.step())[0] == "lookup_order", "x1: the second call succeeds"


def test_fault_without_count_fails_every_call(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 3042 [sim-fault:429]")
    for _ in range(3):
        with pytest.raises(openai.RateLimitError):
            chat.step()


def test_500_fault(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 4042 [sim-fault:500]")
    with pytest.raises(openai.InternalServerError) as caught:
        chat.step()
    assert caught.value.status_code == 500
    assert caught.value.body["type"] == "server_error"


def test_fault_header_applies_to_that_call_only(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 6060")
    with pytest.raises(openai.InternalServerError):
        chat.step(extra_headers={"X-Sim-Fault": "500"})
    assert call_args(chat.step())[0] == "lookup_order"


def test_fault_count_spans_the_whole_conversation(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 7070 [sim-fault:500x1]")
    with pytest.raises(openai.InternalServerError):
        chat.step()
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": True, "result": {"status": "delivered", "total": 5.0}})
    # x1 was used up by the first call: later turns of the conversation are not faulted
    assert call_args(chat.step())[0] == "issue_refund"


def test_malformed_content_is_not_json_then_recovers(client: OpenAI) -> None:
    chat = Chat(client, "Summarise [sim-fault:malformedx1]", agent="triage", tools=[])
    broken = chat.client.chat.completions.create(
        model="sim-small", messages=chat.messages, response_format={"type": "json_object"}
    )
    assert broken.choices[0].finish_reason == "stop"
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.choices[0].message.content)
    assert decision(chat.step())["answer"] == "Summarise"


def test_timeout_fault_outlasts_the_client_timeout(sim: SimServer) -> None:
    impatient = OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        Chat(impatient, "Refund order 5042 [sim-fault:timeout]").step()
    assert time.monotonic() - started < 2.0


def test_timeout_once_then_retry_succeeds(sim: SimServer) -> None:
    retrying = OpenAI(base_url=sim.base_url, api_key="sim", max_retries=1, timeout=0.5)
    completion = Chat(retrying, "Refund order 8080 [sim-fault:timeoutx1]").step()
    assert call_args(completion)[0] == "lookup_order"


def test_timeout_stall_length_is_configurable() -> None:
    with start_in_thread(port=0, latency_scale=0, fault_timeout_s=0.2) as server:
        patient = OpenAI(base_url=server.base_url, api_key="sim", max_retries=0, timeout=5)
        started = time.monotonic()
        completion = Chat(patient, "Refund order 1042 [sim-fault:timeout]").step()
        elapsed = time.monotonic() - started
    assert call_args(completion)[0] == "lookup_order"
    assert 0.2 <= elapsed < 2.0


def test_unknown_fault_kind_is_a_bad_request(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        Chat(client, "Refund order 6042 [sim-fault:teapot]").step()
    assert "teapot" in caught.value.body["message"]


def test_fault_markers_are_invisible_to_the_brain(client: OpenAI) -> None:
    completion = Chat(client, "Echo me [sim-fault:500x0]", agent="triage", tools=[]).step()
    assert decision(completion)["answer"] == "Echo me"
