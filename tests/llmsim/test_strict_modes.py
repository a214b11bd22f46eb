"""Serving modes (``<tier>:<mode>``) refuse what the real endpoints refuse, with their exact
error bodies; the broken-answer faults answer what a broken endpoint answers."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from agentdesk.llmsim import SimServer
from agentdesk.runtime.llm import DECISION_SCHEMA
from agentdesk.runtime.profiles import ModelProfile
from agentdesk.runtime.request_shaping import shape_request

from .conversation import REFUND_TOOLS

MAX_TOKENS_ERROR = {"error": {
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
               "Use 'max_completion_tokens' instead.",
    "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}
TEMPERATURE_ERROR = {"error": {
    "message": "Unsupported value: 'temperature' does not support 0 with this model. "
               "Only the default (1) value is supported.",
    "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}


def post(sim: SimServer, task: str, model: str, **params: Any) -> httpx.Response:
    messages = params.pop("messages", None) or [
        {"role": "system", "content": "You are the support-refunds agent."},
        {"role": "user", "content": task}]
    return httpx.post(f"{sim.base_url}/chat/completions",
                      json={"model": model, "messages": messages, **params}, timeout=10)


def test_reasoning_mode_refuses_max_tokens_exactly_as_openai(sim: SimServer) -> None:
    response = post(sim, "Where is order 1077?", "sim-small:reasoning", max_tokens=100)
    assert (response.status_code, response.json()) == (400, MAX_TOKENS_ERROR)


def test_reasoning_mode_refuses_temperature_0_exactly_as_openai(sim: SimServer) -> None:
    response = post(sim, "Where is order 1077?", "sim-small:reasoning",
                    max_completion_tokens=100, temperature=0)
    assert (response.status_code, response.json()) == (400, TEMPERATURE_ERROR)
    accepted = post(sim, "Where is order 1077?", "sim-small:reasoning", temperature=1)
    assert accepted.status_code == 200


def test_our_requests_for_a_reasoning_profile_pass_and_a_plain_shaped_one_does_not(
        sim: SimServer) -> None:
    messages = [{"role": "system", "content": "You are the support-refunds agent."},
                {"role": "user", "content": "Where is order 1077?"}]
    reasoning = ModelProfile(name="sim-large:reasoning", reasoning=True, reasoning_effort="high")
    body = shape_request(reasoning, messages, REFUND_TOOLS, 512)
    accepted = httpx.post(f"{sim.base_url}/chat/completions", json=body, timeout=10)
    assert accepted.status_code == 200, accepted.text
    usage = accepted.json()["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 256  # high effort

    plain = shape_request(ModelProfile(name="sim-large:reasoning"), messages, REFUND_TOOLS, 512)
    refused = httpx.post(f"{sim.base_url}/chat/completions", json=plain, timeout=10)
    assert (refused.status_code, refused.json()) == (400, MAX_TOKENS_ERROR)


def test_reasoning_tokens_count_as_completion_tokens_and_in_the_cap(sim: SimServer) -> None:
    low = post(sim, "What is your refund policy?", "sim-small:reasoning",
               max_completion_tokens=500, reasoning_effort="low").json()
    assert low["usage"]["completion_tokens_details"]["reasoning_tokens"] == 24
    assert low["usage"]["completion_tokens"] > 24
    starved = post(sim, "What is your refund policy?", "sim-small:reasoning",
                   max_completion_tokens=50).json()  # medium effort: 96 reasoning tokens
    choice = starved["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("length", "")
    assert starved["usage"]["completion_tokens"] == 50


def test_reasoning_mode_refuses_logprobs_and_unknown_efforts(sim: SimServer) -> None:
    logprobs = post(sim, "Where is order 1077?", "sim-small:reasoning", logprobs=True)
    assert logprobs.json()["error"]["param"] == "logprobs"
    effort = post(sim, "Where is order 1077?", "sim-small:reasoning", reasoning_effort="max")
    assert effort.json()["error"]["code"] == "invalid_value"


def test_plain_tiers_refuse_reasoning_effort_and_return_logprobs(sim: SimServer) -> None:
    refused = post(sim, "Where is order 1077?", "sim-small", reasoning_effort="low")
    assert refused.json()["error"]["code"] == "unsupported_parameter"
    body = post(sim, "What is your refund policy?", "sim-small", logprobs=True,
                response_format=DECISION_SCHEMA).json()
    entries = body["choices"][0]["logprobs"]["content"]
    content = body["choices"][0]["message"]["content"]
    assert "".join(e["token"] for e in entries) == content
    # sim-small cannot answer a policy question by keywords: it asks which order (its step
    # deserves 0.3). The tokens follow that (0.3 ± 0.04 · 2.5), on the one token where the
    # "answer" value starts; the self-report is overstated (error_model). This replaced an
    # assertion that the logprobs multiplied to the self-report: they used to mirror it.
    unsure = [e for e in entries if e["logprob"] < -0.001]
    start = content.index('"answer": ') + len('"answer": ')
    assert len(unsure) == 1 and unsure[0]["token"] == content[start - start % 4:][:4]
    probability = math.exp(sum(e["logprob"] for e in entries))
    assert 0.2 <= probability <= 0.4 < json.loads(content)["confidence"]


def test_json_object_mode_refuses_json_schema_like_llama_cpp(sim: SimServer) -> None:
    refused = post(sim, "What is your refund policy?", "sim-small:json-object",
                   response_format=DECISION_SCHEMA)
    assert refused.status_code == 400
    assert refused.json() == {"error": {
        "code": 400, "message": 'response_format type must be one of "text" or "json_object"',
        "type": "invalid_request_error"}}
    accepted = post(sim, "What is your refund policy?", "sim-small:json-object",
                    response_format={"type": "json_object"})
    assert json.loads(accepted.json()["choices"][0]["message"]["content"])["confidence"] > 0


def test_no_tools_mode_refuses_tools_and_tool_messages(sim: SimServer) -> None:
    tools = post(sim, "Where is order 1077?", "sim-small:no-tools", tools=REFUND_TOOLS)
    assert tools.status_code == 400 and "tools" in tools.json()["error"]["message"]
    messages = [
        {"role": "system", "content": "You are the support-refunds agent."},
        {"role": "user", "content": "Where is order 1077?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order_id": "1077"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true, "result": {}}'},
    ]
    history = post(sim, "", "sim-small:no-tools", messages=messages)
    assert history.status_code == 400


def test_modes_combine_and_an_unknown_mode_is_an_unknown_model(sim: SimServer) -> None:
    both = post(sim, "Where is order 1077?", "sim-small:json-object:no-tools:ctx4096",
                response_format={"type": "json_object"})
    assert both.status_code == 200
    unknown = post(sim, "Where is order 1077?", "sim-small:turbo")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")


def test_tool_choice_required_forces_a_call(sim: SimServer) -> None:
    body = post(sim, "Hello there", "sim-small", tools=REFUND_TOOLS[:1],
                tool_choice="required").json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "search_policy"


@pytest.mark.parametrize("fault", ["nousage", "overreport", "emptychoices", "nomessage",
                                   "error200"])
def test_body_faults(sim: SimServer, fault: str) -> None:
    task = f"Is order 1001 delivered? [sim-fault:{fault}]"
    honest = post(sim, "Is order 1001 delivered?", "sim-small", tools=REFUND_TOOLS).json()
    response = post(sim, task, "sim-small", tools=REFUND_TOOLS)
    assert response.status_code == 200
    body = response.json()
    if fault == "nousage":
        assert "usage" not in body and body["choices"]
    elif fault == "overreport":
        assert body["usage"]["completion_tokens"] == 2 * honest["usage"]["completion_tokens"]
    elif fault == "emptychoices":
        assert body["choices"] == []
    elif fault == "nomessage":
        assert "message" not in body["choices"][0]
    else:
        assert "choices" not in body and body["error"]["type"] == "server_error"


def test_html_and_truncated_bodies(sim: SimServer) -> None:
    html = post(sim, "Where is order 1001? [sim-fault:html]", "sim-small")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text.startswith("<!DOCTYPE html>")
    truncated = post(sim, "Where is order 1001? [sim-fault:truncated]", "sim-small")
    assert truncated.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text)
