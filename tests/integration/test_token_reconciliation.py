"""Token counts against an endpoint that misreports them, through the real worker and the
simulator over HTTP: one that reports twice what it used (``overreport``) never takes a run
past its token ceiling, and one that reports nothing (``nousage``) is billed at the worst
case reserved for each call, never at $0."""

from __future__ import annotations

import pytest

from agentdesk.runtime.budget import worst_case_cost
from runs.models import ModelProfile, Policy

from .helpers import submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")

QUESTION = "Where is my order 1077?"


@pytest.mark.parametrize("max_tokens", [2_000, 4_000, 5_000, 6_000, 8_000, 50_000])
def test_an_endpoint_reporting_double_never_crosses_the_token_ceiling(demo, max_tokens):
    ModelProfile.objects.filter(name="sim-small").update(tokenizer="o200k_base")
    Policy.objects.filter(name="support-default").update(max_tokens=max_tokens)
    run = submit(demo["team"], demo["operator"], f"{QUESTION} [sim-fault:overreport]")
    wait_status(run, "succeeded", "failed")

    assert run.tokens_in + run.tokens_out <= max_tokens
    assert run.status == "succeeded" or run.reason == "token_limit"
    for step in run.steps.filter(kind="model"):
        args = step.args
        assert step.tokens_in > 0 and step.tokens_in % 2 == 0  # the doubled count, as billed
        assert args["prompt_tokens_reserved"] >= step.tokens_in  # the reservation held
        assert args["prompt_tokens_ratio"] == pytest.approx(
            step.tokens_in / args["prompt_tokens_estimated"], abs=1e-3)
    if max_tokens == 50_000:
        assert run.status == "succeeded"
        ratios = run.state["prompt_token_ratios"]
        assert ratios["sim-small"] > 1  # the endpoint counts more than o200k_base: learned


def test_an_endpoint_without_usage_is_billed_at_each_calls_reservation(demo):
    run = submit(demo["team"], demo["operator"], f"{QUESTION} [sim-fault:nousage]")
    wait_status(run, "succeeded", "failed", "waiting_human")

    steps = list(run.steps.filter(kind="model"))
    assert steps
    policy = run.policy
    for step in steps:
        reserved = step.args["prompt_tokens_reserved"]
        assert step.args["usage_missing"] is True
        assert (step.tokens_in, step.tokens_out) == (reserved, policy.max_output_tokens)
        assert step.cost_usd == worst_case_cost(policy, step.model, reserved) > 0
    assert run.cost_usd == sum(s.cost_usd for s in steps) > 0
