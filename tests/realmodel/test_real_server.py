"""The demo agent end to end against a real inference server, not the simulator:
service → Celery worker → engine → gateway → ``openai`` client → llama.cpp (SmolLM2-135M).

The model is tiny and often wrong; what must hold regardless is the product's promise:
the run settles in a named state (never ``internal_error``, never stuck), every model step
carries exactly the tokens the server reported, a local model at an explicit price of 0 costs
$0 (and is not refused as unpriced), and each request is shaped by its catalogue profile.
The server has no native tools (its chat template drops them), so every profile uses the
prompted tool protocol; one asks for ``json_object``, one for prompt-only output, and one
for ``json_schema``, which this server enforces with a grammar: the 135M model then makes
tool calls, so that run also takes the prompted protocol through a tool and back.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from agentdesk.runtime.outcomes import Reason
from runs.models import Escalation, ModelProfile, Policy, Run, Step
from tests.integration.helpers import submit, wait_status

from .conftest import CONTEXT_WINDOW, MODEL_NAMES
from .recorder import Exchange, Recorder

pytestmark = [pytest.mark.realmodel, pytest.mark.usefixtures("celery_worker")]

MAX_OUTPUT_TOKENS = 128
MAX_STEPS = 10
SETTLE_TIMEOUT_S = 240  # a stuck run fails the test after this; a normal one takes seconds
PROFILES = {  # structured output mode → catalogue name (all names reach the same server)
    "json_object": MODEL_NAMES[0],
    "prompt": MODEL_NAMES[1],
    "json_schema": MODEL_NAMES[2],
}
ZERO = Decimal("0")


def local_model(name: str, structured_output: str) -> ModelProfile:
    """The catalogue row an admin would write for this server (README: Use your own model)."""
    row, _ = ModelProfile.objects.update_or_create(name=name, defaults={
        "input_per_mtok": ZERO, "cached_input_per_mtok": ZERO, "output_per_mtok": ZERO,
        "context_window": CONTEXT_WINDOW, "max_output_tokens": MAX_OUTPUT_TOKENS,
        "tool_calling": "prompted", "structured_output": structured_output,
        "reasoning": False, "reasoning_effort": "", "logprobs": False, "tokenizer": "",
    })
    assert row.priced  # an explicit 0 is a price
    return row


def use_only(model: str) -> None:
    """The demo policy on this one model: no large tier (an unsure answer goes to a human),
    short replies, a few steps at most (the test's time), no response cache (every model
    step is a real call)."""
    updated = Policy.objects.filter(name="support-default").update(
        small_model=model, large_model="", max_output_tokens=MAX_OUTPUT_TOKENS,
        max_steps=MAX_STEPS, cache_ttl_seconds=0)
    assert updated == 1


def trace(run: Run) -> str:
    lines = [f"run {run.pk}: {run.status}/{run.reason or '-'}  tokens {run.tokens_in}+"
             f"{run.tokens_out} (cached {run.tokens_cached})  ${run.cost_usd:.6f}"]
    for s in run.steps.order_by("index"):
        tokens = (f" in={s.tokens_in} out={s.tokens_out} cached={s.tokens_cached}"
                  if s.kind == "model" else "")
        extra = f" conf={s.confidence}" if s.confidence is not None else ""
        error = f" error={s.error[:100]!r}" if s.error else ""
        lines.append(f"  #{s.index} {s.kind:<10} {s.name:<16}{tokens}{extra}{error}")
    return "\n".join(lines)


def assert_settled_with_a_name(run: Run) -> None:
    assert run.reason != Reason.INTERNAL_ERROR, trace(run)
    if run.status == "failed":
        assert run.reason in {r.value for r in Reason} - {"", Reason.INTERNAL_ERROR}, trace(run)
        assert run.steps.filter(kind="final").exists(), trace(run)
    elif run.status == "waiting_human":
        escalation = Escalation.objects.get(run=run, status=Escalation.Status.OPEN)
        assert escalation.reason, trace(run)
    else:
        assert run.status == "succeeded" and run.answer.strip(), trace(run)


def assert_shaped_by_profile(calls: list[Exchange], profile: ModelProfile) -> None:
    for call in calls:
        body = call.request
        assert body["model"] == profile.name
        # prompted tools: the tools travel in the instructions, never as the API parameter
        assert "tools" not in body and "tool_choice" not in body, sorted(body)
        # not a reasoning model: max_tokens (no more than the profile allows), a temperature
        assert "max_completion_tokens" not in body
        assert 0 < body["max_tokens"] <= profile.max_output_tokens
        if profile.structured_output == "prompt":
            assert "response_format" not in body, body["response_format"]
        else:  # json_object, or json_schema (the schema allows a tool call or a decision)
            assert body.get("response_format", {}).get("type") == profile.structured_output, \
                body.get("response_format")


def assert_usage_is_the_servers(model_steps: list[Step], calls: list[Exchange]) -> None:
    """The tokens on the steps are the ``usage`` the server reported for the calls the app
    made, as the recorder saw them on the wire: per call when each step is one call, and in
    total either way (a step that had to repair its reply holds both calls)."""
    answered = [c for c in calls if c.status == 200]
    assert answered, [(c.status, c.response) for c in calls]
    for call in answered:
        assert call.usage.get("prompt_tokens", 0) > 0 and "completion_tokens" in call.usage
    billed = [s for s in model_steps if not s.args.get("cache_hit")]
    reported = [(c.usage["prompt_tokens"], c.usage["completion_tokens"], c.cached_tokens)
                for c in answered]
    recorded = [(s.tokens_in, s.tokens_out, s.tokens_cached) for s in billed if s.tokens_in]
    if len(recorded) == len(reported):
        assert recorded == reported
    assert [sum(x) for x in zip(*recorded, strict=True)] == \
        [sum(x) for x in zip(*reported, strict=True)]
    assert all(s.tokens_in > 0 for s in billed if not s.error), "a reply billed as 0 tokens"


@pytest.mark.parametrize("mode", PROFILES)
def test_demo_agent_settles_against_a_real_server(mode, demo, data_dir, real_llm: Recorder):
    profile = local_model(PROFILES[mode], mode)
    use_only(profile.name)
    real_llm.clear()

    started = time.monotonic()
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded", "failed", "waiting_human", timeout=SETTLE_TIMEOUT_S)
    calls = real_llm.exchanges()
    print(f"\n[{mode}] settled in {time.monotonic() - started:.1f}s, "
          f"{len(calls)} call(s) to the server\n{trace(run)}")

    assert_settled_with_a_name(run)
    steps = list(run.steps.order_by("index"))
    assert steps[0].kind == "retrieval"  # retrieve first, even on a real model
    model_steps = [s for s in steps if s.kind == "model"]
    assert model_steps and calls, trace(run)
    assert {s.model for s in model_steps} == {profile.name}, trace(run)

    assert_shaped_by_profile(calls, profile)
    assert_usage_is_the_servers(model_steps, calls)
    assert run.tokens_in == sum(s.tokens_in for s in model_steps)
    assert run.tokens_out == sum(s.tokens_out for s in model_steps)

    # a local model at an explicit price of 0: it may spend, and spends nothing
    assert run.reason != "model_unpriced", trace(run)
    assert run.cost_usd == ZERO and all(s.cost_usd == ZERO for s in steps)
