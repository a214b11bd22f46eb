"""The model gateway against a misbehaving endpoint (the simulator's fault injection),
through the real openai client, worker and database."""

from __future__ import annotations

import pytest

from .helpers import submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def test_rate_limited_call_is_retried_after_retry_after(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077? [sim-fault:429x1]")
    wait_status(run, "succeeded")
    assert not run.steps.filter(kind="model").exclude(error="").exists()


def test_persistent_server_errors_fail_the_run_as_model_failed(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077? [sim-fault:500]")
    wait_status(run, "failed", timeout=60)
    assert run.reason == "model_failed"
    failed = run.steps.get(kind="model")
    assert "500" in failed.error and failed.tokens_in == 0


def test_malformed_output_gets_one_repair(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077? [sim-fault:malformedx1]")
    wait_status(run, "succeeded")
    bad = run.steps.filter(kind="model").exclude(error="")
    assert bad.count() == 1 and "not a valid decision" in bad.get().error


def test_output_that_stays_malformed_fails_as_invalid_output(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077? [sim-fault:malformed]")
    wait_status(run, "failed")
    assert run.reason == "invalid_output"
    assert run.steps.filter(kind="model").exclude(error="").count() == 2
    assert run.cost_usd > 0  # the unusable replies were still paid for, and are counted


def test_timeouts_fail_the_run_as_model_failed(demo, settings):
    from runs import execution

    settings.LLM_TIMEOUT_SECONDS = 0.5
    settings.LLM_MAX_RETRIES = 1
    execution.gateway.cache_clear()
    try:
        run = submit(demo["team"], demo["operator"], "Where is my order 1077? [sim-fault:timeout]")
        wait_status(run, "failed", timeout=60)
    finally:
        execution.gateway.cache_clear()
    assert run.reason == "model_failed"
    assert "timed out" in run.steps.get(kind="model").error
