"""Tools are unreliable by default: timeouts, retries of transient errors only, breakers.

No Django here: ``execute_tool`` gets an injected sleep (the backoff waits are recorded,
not slept), an injected clock, and an ``InMemoryBreakerStore`` on a fake clock.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from agentdesk.agents.support_refunds import tools as refund_tools
from agentdesk.runtime.breaker import CLOSED, HALF_OPEN, OPEN, BreakerState, InMemoryBreakerStore
from agentdesk.runtime.tools import (
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    TransientToolError,
    execute_tool,
)

from .fakes import FakeClock

CTX = ToolContext(run_id="run-1", idempotency_key="run-1:3")


class OrderArgs(BaseModel):
    order_id: str = Field(pattern=r"^\d{3,8}$")


class Backend:
    """A tool body that plays back a script of exceptions and results, counting calls."""

    def __init__(self, *script: BaseException | dict[str, Any]) -> None:
        self.script = list(script)
        self.calls = 0

    def __call__(self, ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        self.calls += 1
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return {**item, "order_id": args.order_id}


def make_tool(fn: Callable[..., dict[str, Any]], **options: Any) -> Tool:
    return Tool(name="lookup", description="", args_model=OrderArgs, fn=fn, **options)


class Sleeps(list):
    """An injected ``sleep``: records the backoff waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so tool threads left hanging by a timeout test finish."""
    event = threading.Event()
    yield event
    event.set()


def call(tool: Tool, sleeps: Sleeps, order_id: str = "1077", **kwargs: Any):
    return execute_tool(tool, CTX, {"order_id": order_id}, sleep=sleeps, **kwargs)


# -- retries -------------------------------------------------------------------------------


def test_success_returns_the_result_in_one_attempt(sleeps):
    backend = Backend({"status": "shipped"})
    out = call(make_tool(backend), sleeps)
    assert out.ok and out.result == {"status": "shipped", "order_id": "1077"}
    assert (out.error, out.attempts, out.breaker_open, out.outcome_unknown) == ("", 1, False, False)
    assert backend.calls == 1 and sleeps == []


def test_permanent_error_is_not_retried(sleeps):
    backend = Backend(ToolError("order 1077 not found"))
    out = call(make_tool(backend), sleeps)
    assert (out.result, out.error, out.attempts) == (None, "order 1077 not found", 1)
    assert backend.calls == 1 and sleeps == []


def test_transient_error_is_retried_up_to_max_attempts_with_growing_backoff(sleeps):
    backend = Backend(TransientToolError("order service unavailable (HTTP 503)"))
    out = call(make_tool(backend, max_attempts=4), sleeps)
    assert out.result is None and out.error == "order service unavailable (HTTP 503)"
    assert out.attempts == 4 and backend.calls == 4
    assert len(sleeps) == 3  # a wait between attempts, none after the last
    for n, wait in enumerate(sleeps):  # 0.05 * 2**n, plus at most 0.05 of jitter
        assert 0.05 * 2**n <= wait <= 0.05 * 2**n + 0.05


def test_backoff_is_capped(sleeps):
    backend = Backend(TransientToolError("503"))
    call(make_tool(backend, max_attempts=8), sleeps)
    assert len(sleeps) == 7 and max(sleeps) <= 2.0 and sleeps[-1] >= 1.95


def test_success_on_a_later_attempt_returns_the_result_with_its_attempts(sleeps):
    backend = Backend(TransientToolError("503"), TransientToolError("503"), {"status": "ok"})
    out = call(make_tool(backend), sleeps)
    assert out.ok and out.result == {"status": "ok", "order_id": "1077"}
    assert out.attempts == 3 and backend.calls == 3 and len(sleeps) == 2


def test_max_attempts_one_never_retries(sleeps):
    backend = Backend(TransientToolError("503"))
    out = call(make_tool(backend, max_attempts=1), sleeps)
    assert out.attempts == 1 and backend.calls == 1 and sleeps == []


def test_a_crashing_tool_is_a_permanent_failure_with_a_clear_message(sleeps):
    backend = Backend(KeyError("total"))
    out = call(make_tool(backend), sleeps)
    assert out.error == "lookup raised KeyError: 'total'"
    assert out.attempts == 1 and backend.calls == 1


def test_retry_on_lists_further_transient_exceptions(sleeps):
    backend = Backend(ConnectionResetError("peer reset"), {"status": "ok"})
    tool = make_tool(backend, retry_on=(TransientToolError, ConnectionError))
    out = call(tool, sleeps)
    assert out.ok and out.attempts == 2


def test_the_registry_decorator_takes_the_resilience_options():
    registry = ToolRegistry()

    @registry.tool(args=OrderArgs, timeout_s=2.5, max_attempts=5, retry_on=(OSError,))
    def lookup(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        """Look it up."""
        return {}

    tool = registry.get("lookup")
    assert tool is not None
    assert (tool.timeout_s, tool.max_attempts, tool.retry_on) == (2.5, 5, (OSError,))
    plain = make_tool(Backend({}))
    assert (plain.timeout_s, plain.max_attempts, plain.retry_on) == (10.0, 3, (TransientToolError,))


def test_a_simulated_crash_is_not_swallowed(sleeps):
    class Crash(BaseException):
        pass

    with pytest.raises(Crash):
        call(make_tool(Backend(Crash())), sleeps)


# -- arguments, latency, context -----------------------------------------------------------


def test_invalid_arguments_never_reach_the_tool(sleeps):
    backend = Backend({"status": "ok"})
    out = call(make_tool(backend), sleeps, order_id="12; drop table")
    assert out.result is None and out.attempts == 0 and backend.calls == 0
    assert out.error.startswith("invalid arguments for lookup:")


def test_latency_covers_all_attempts_on_the_injected_clock(sleeps):
    clock = FakeClock()

    def slow_then_ok(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        clock.advance(0.25)
        if clock.now < 1_000.4:
            raise TransientToolError("503")
        return {"ok": True}

    out = call(make_tool(slow_then_ok), sleeps, clock=clock)
    assert out.attempts == 2 and out.latency_ms == 500


def test_the_callers_context_variables_reach_the_tool_thread(sleeps):
    run_var: contextvars.ContextVar[str] = contextvars.ContextVar("run_var", default="")
    seen = []

    def fn(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        seen.append((run_var.get(), threading.current_thread().name))
        return {}

    token = run_var.set("run-42")
    try:
        call(make_tool(fn), sleeps)
    finally:
        run_var.reset(token)
    assert seen[0][0] == "run-42" and seen[0][1].startswith("agentdesk-tool")


# -- timeouts ------------------------------------------------------------------------------


def test_a_timed_out_read_is_transient_and_retried(sleeps, release):
    calls = []

    def hangs(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        calls.append(1)
        release.wait(5)
        return {"late": True}

    out = call(make_tool(hangs, timeout_s=0.05), sleeps)
    assert out.result is None and out.error == "lookup timed out after 0.05s"
    assert out.attempts == 3 and len(calls) == 3 and len(sleeps) == 2
    assert not out.outcome_unknown


def test_a_timed_out_side_effect_is_not_retried_and_its_outcome_is_unknown(sleeps, release):
    calls = []

    def refund(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        calls.append(1)
        release.wait(5)
        return {"refund_id": "rf_1"}

    out = call(make_tool(refund, timeout_s=0.05, side_effect=True), sleeps)
    assert out.result is None and out.attempts == 1 and len(calls) == 1 and sleeps == []
    assert out.outcome_unknown and "outcome is unknown" in out.error
    assert "timed out after 0.05s" in out.error


def test_a_timeout_raised_by_the_tool_itself_is_not_mistaken_for_ours(sleeps):
    backend = Backend(TimeoutError("socket read timed out"))
    out = call(make_tool(backend, timeout_s=5), sleeps)
    assert out.error == "lookup raised TimeoutError: socket read timed out"
    assert out.attempts == 1


def test_a_slow_call_within_its_timeout_succeeds(sleeps):
    def slowish(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        threading.Event().wait(0.02)
        return {"ok": True}

    out = call(make_tool(slowish, timeout_s=2), sleeps)
    assert out.ok and out.attempts == 1


# -- circuit breaker -----------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> InMemoryBreakerStore:
    return InMemoryBreakerStore(failure_threshold=3, cooldown_s=30, clock=clock)


def test_breaker_opens_after_n_failures_and_calls_stop_reaching_the_tool(sleeps, breaker, clock):
    backend = Backend(TransientToolError("503"))
    tool = make_tool(backend, max_attempts=1)
    for _ in range(3):
        assert call(tool, sleeps, breaker=breaker).error == "503"
    assert breaker.states()["lookup"] == {"state": OPEN, "failures": 3, "until": clock.now + 30}

    out = call(tool, sleeps, breaker=breaker)
    assert out.breaker_open and out.result is None and out.attempts == 0
    assert out.error.startswith("circuit open for lookup until ")
    assert backend.calls == 3


def test_breaker_half_opens_after_the_cooldown_and_a_success_closes_it(sleeps, breaker, clock):
    backend = Backend(
        TransientToolError("503"),
        TransientToolError("503"),
        TransientToolError("503"),
        {"status": "ok"},
    )
    tool = make_tool(backend, max_attempts=1)
    for _ in range(3):
        call(tool, sleeps, breaker=breaker)
    clock.advance(29.9)
    assert call(tool, sleeps, breaker=breaker).breaker_open
    clock.advance(0.1)

    out = call(tool, sleeps, breaker=breaker)  # the half-open trial
    assert out.ok and out.attempts == 1 and backend.calls == 4
    assert breaker.states() == {} and breaker.allow("lookup") == (True, None)


def test_a_failed_trial_reopens_the_breaker(sleeps, breaker, clock):
    backend = Backend(TransientToolError("503"))
    tool = make_tool(backend, max_attempts=3)
    call(tool, sleeps, breaker=breaker)  # three attempts, three failures: open
    clock.advance(30)

    out = call(tool, sleeps, breaker=breaker)
    assert out.attempts == 1 and out.breaker_open  # the trial failed, the retry was refused
    assert out.error.startswith("503; then circuit open for lookup")
    assert backend.calls == 4
    assert breaker.states()["lookup"]["state"] == OPEN
    assert breaker.states()["lookup"]["until"] == clock.now + 30


def test_half_open_lets_exactly_one_trial_through(breaker, clock):
    for _ in range(3):
        breaker.record_failure("lookup")
    clock.advance(30)
    assert breaker.allow("lookup") == (True, None)  # the trial
    assert breaker.allow("lookup") == (False, clock.now + 30)  # everyone else waits
    assert breaker.states()["lookup"]["state"] == HALF_OPEN
    clock.advance(30)  # the trial never reported (its worker died): the next caller tries
    assert breaker.allow("lookup") == (True, None)


def test_breaker_opens_between_retries(sleeps, clock):
    breaker = InMemoryBreakerStore(failure_threshold=2, cooldown_s=30, clock=clock)
    backend = Backend(TransientToolError("503"))
    out = call(make_tool(backend, max_attempts=5), sleeps, breaker=breaker)
    assert out.attempts == 2 and backend.calls == 2 and out.breaker_open


def test_permanent_errors_do_not_trip_the_breaker(sleeps, breaker):
    backend = Backend(ToolError("order not found"))
    tool = make_tool(backend)
    for _ in range(5):
        assert call(tool, sleeps, breaker=breaker).error == "order not found"
    assert backend.calls == 5 and breaker.states() == {}


def test_a_success_resets_the_consecutive_failures(sleeps, breaker):
    backend = Backend(
        TransientToolError("503"),
        TransientToolError("503"),
        {"ok": True},
        TransientToolError("503"),
        TransientToolError("503"),
        {"ok": True},
    )
    tool = make_tool(backend, max_attempts=1)
    for _ in range(6):
        call(tool, sleeps, breaker=breaker)
    assert backend.calls == 6 and breaker.states() == {}


def test_crashes_and_timeouts_count_as_failures(sleeps, breaker, release):
    def hangs(ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
        release.wait(5)
        return {}

    call(make_tool(Backend(ValueError("bug"))), sleeps, breaker=breaker)
    call(make_tool(hangs, timeout_s=0.02, side_effect=True), sleeps, breaker=breaker)
    assert breaker.states()["lookup"] == {"state": CLOSED, "failures": 2, "until": None}


def test_breakers_are_per_tool(sleeps, breaker):
    failing = make_tool(Backend(TransientToolError("503")), max_attempts=3)
    other = dataclasses.replace(make_tool(Backend({"ok": True})), name="other")
    call(failing, sleeps, breaker=breaker)
    assert call(failing, sleeps, breaker=breaker).breaker_open
    assert call(other, sleeps, breaker=breaker).ok


def test_state_machine_ignores_stragglers_while_open():
    state = BreakerState()
    for _ in range(2):
        state.failure(now=0, threshold=2, cooldown_s=10)
    assert (state.state, state.until) == (OPEN, 10)
    state.failure(now=5, threshold=2, cooldown_s=10)  # started before it opened
    assert (state.state, state.failures, state.until) == (OPEN, 2, 10)


def test_the_in_memory_store_is_thread_safe():
    store = InMemoryBreakerStore(failure_threshold=1000, cooldown_s=30)

    def fail_many() -> None:
        for _ in range(100):
            store.record_failure("lookup")

    threads = [threading.Thread(target=fail_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.states()["lookup"]["failures"] == 800


# -- the shipped agent's order service and its fault injection -----------------------------


def lookup(order_id: str, sleeps: Sleeps, tool: Tool = refund_tools.lookup_order, **kwargs: Any):
    return execute_tool(tool, CTX, {"order_id": order_id}, sleep=sleeps, **kwargs)


def test_order_service_503_is_transient_and_retried(sleeps):
    out = lookup("9999", sleeps)
    assert out.error == "order service unavailable (HTTP 503)" and out.attempts == 3


def test_flaky_order_answers_on_the_third_attempt(sleeps, monkeypatch):
    monkeypatch.setattr(refund_tools, "flaky_lookups", refund_tools.Counter())
    out = lookup("9997", sleeps)
    assert out.ok and out.attempts == 3 and out.result["order_id"] == "9997"
    assert lookup("9997", sleeps).attempts == 1  # recovered for the rest of the process


def test_slow_order_times_out(sleeps, monkeypatch):
    monkeypatch.setenv("AGENTDESK_TOOL_DELAY_9998", "0.3")
    tool = dataclasses.replace(refund_tools.lookup_order, timeout_s=0.05, max_attempts=2)
    out = lookup("9998", sleeps, tool=tool)
    assert out.error == "lookup_order timed out after 0.05s" and out.attempts == 2
    monkeypatch.setenv("AGENTDESK_TOOL_DELAY_9998", "0")
    assert lookup("9998", sleeps, tool=tool).ok


def test_unknown_order_is_permanent(sleeps):
    out = lookup("4040", sleeps)
    assert out.error == "order 4040 not found" and out.attempts == 1 and sleeps == []


def test_the_real_order_service_through_execute_tool(sleeps):
    out = lookup("1077", sleeps)
    assert out.ok and out.result is not None and out.result["order_id"] == "1077"
    out = lookup("4040", sleeps)
    assert out.result is None and out.error == "order 4040 not found"
    out = lookup("x", sleeps)
    assert out.result is None and out.attempts == 0
    assert out.error.startswith("invalid arguments for lookup_order")
