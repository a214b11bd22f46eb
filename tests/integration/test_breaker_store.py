"""The tool breakers all workers share: Redis when REDIS_URL is set, else one process's memory.

Run on both configurations (CI does): with Redis two store instances with their own
connections stand for two worker processes; on the embedded default the workers are
threads of one process sharing ``breaker_store()``. Either way the same state machine holds.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from agentdesk.runtime.breaker import CLOSED, HALF_OPEN, OPEN, InMemoryBreakerStore
from agentdesk.runtime.tools import Tool, ToolContext, TransientToolError, execute_tool
from runs import breakers
from runs.breakers import RedisBreakerStore, breaker_states, breaker_store, make_breaker_store
from tests.runtime.fakes import FakeClock

THRESHOLD, COOLDOWN = 3, 30.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=time.time())


@pytest.fixture
def tool_name() -> Iterator[str]:
    """A tool name of its own, so tests sharing a Redis never see each other's breakers."""
    name = f"test_tool_{uuid.uuid4().hex[:12]}"
    yield name
    make_breaker_store().reset(name)  # type: ignore[attr-defined]


@pytest.fixture
def workers(settings, clock) -> list[Any]:
    """Two workers' views of the shared store, on a fake clock: the state machine, each
    worker asking the store on every call (the quiet window has a test of its own)."""
    settings.TOOL_BREAKER_FAILURES = THRESHOLD
    settings.TOOL_BREAKER_COOLDOWN_SECONDS = COOLDOWN
    settings.TOOL_BREAKER_QUIET_SECONDS = 0
    if settings.REDIS_URL:
        stores = [make_breaker_store(), make_breaker_store()]  # own connections each
    else:
        shared = make_breaker_store()
        stores = [shared, shared]  # threads of one process share one object
    for store in stores:
        store.clock = clock
    return stores


def test_the_configured_store_is_redis_exactly_when_redis_url_is_set(settings):
    store = breaker_store()
    assert store is breaker_store()  # one per process
    expected = RedisBreakerStore if settings.REDIS_URL else InMemoryBreakerStore
    assert isinstance(store, expected)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(breaker_store()))
    thread.start()
    thread.join()
    assert seen == [store]  # every worker thread gets the same store


def test_thresholds_come_from_settings(settings):
    settings.TOOL_BREAKER_FAILURES = 7
    settings.TOOL_BREAKER_COOLDOWN_SECONDS = 12
    store = make_breaker_store()
    assert (store.failure_threshold, store.cooldown_s) == (7, 12.0)  # type: ignore[attr-defined]


def test_failures_on_one_worker_open_the_breaker_for_the_other(workers, tool_name, clock):
    a, b = workers
    for _ in range(THRESHOLD - 1):
        a.record_failure(tool_name)
    assert b.allow(tool_name) == (True, None)
    a.record_failure(tool_name)

    allowed, until = b.allow(tool_name)
    assert not allowed and until == pytest.approx(clock.now + COOLDOWN)
    assert a.states()[tool_name]["state"] == OPEN


def test_half_open_gives_one_trial_to_one_worker_and_its_success_closes(workers, tool_name, clock):
    a, b = workers
    for _ in range(THRESHOLD):
        a.record_failure(tool_name)
    clock.advance(COOLDOWN - 0.5)
    assert not b.allow(tool_name)[0]
    clock.advance(0.5)

    assert a.allow(tool_name) == (True, None)  # a is the trial
    assert not b.allow(tool_name)[0]  # b waits for it
    assert b.states()[tool_name]["state"] == HALF_OPEN
    a.record_success(tool_name)
    assert b.allow(tool_name) == (True, None)
    assert tool_name not in b.states()


def test_a_failed_trial_reopens_for_everyone(workers, tool_name, clock):
    a, b = workers
    for _ in range(THRESHOLD):
        b.record_failure(tool_name)
    clock.advance(COOLDOWN)
    assert a.allow(tool_name)[0]
    a.record_failure(tool_name)

    allowed, until = b.allow(tool_name)
    assert not allowed and until == pytest.approx(clock.now + COOLDOWN)


def test_a_trial_that_never_reports_does_not_wedge_the_breaker(workers, tool_name, clock):
    a, b = workers
    for _ in range(THRESHOLD):
        a.record_failure(tool_name)
    clock.advance(COOLDOWN)
    assert a.allow(tool_name)[0]  # then a's worker dies
    clock.advance(COOLDOWN)
    assert b.allow(tool_name) == (True, None)


def test_a_success_resets_the_consecutive_count(workers, tool_name):
    a, b = workers
    for _ in range(THRESHOLD - 1):
        a.record_failure(tool_name)
    b.record_success(tool_name)
    for _ in range(THRESHOLD - 1):
        a.record_failure(tool_name)
    assert b.allow(tool_name) == (True, None)
    assert b.states()[tool_name] == {"state": CLOSED, "failures": THRESHOLD - 1, "until": None}


def test_concurrent_workers_count_every_failure_and_race_for_one_trial(settings, tool_name, clock):
    settings.TOOL_BREAKER_FAILURES = 1000
    settings.TOOL_BREAKER_COOLDOWN_SECONDS = COOLDOWN
    shared = make_breaker_store()
    stores = [make_breaker_store() if settings.REDIS_URL else shared for _ in range(8)]
    for store in stores:
        store.clock = clock
    start = threading.Barrier(len(stores))

    def fail(store: Any) -> None:
        start.wait()
        for _ in range(125):
            store.record_failure(tool_name)

    run_all(fail, stores)
    assert stores[0].states()[tool_name] == {
        "state": OPEN,
        "failures": 1000,
        "until": pytest.approx(clock.now + COOLDOWN),
    }

    clock.advance(COOLDOWN)
    granted = []
    run_all(lambda store: (start.wait(), granted.append(store.allow(tool_name)[0])), stores)
    assert sorted(granted) == [False] * 7 + [True]


class Args(BaseModel):
    order_id: str


def test_execute_tool_on_one_worker_is_refused_after_failures_on_another(workers, tool_name):
    a, b = workers
    calls = []

    def down(ctx: ToolContext, args: Args) -> dict[str, Any]:
        calls.append(args.order_id)
        raise TransientToolError("backend unavailable (HTTP 503)")

    tool = Tool(name=tool_name, description="", args_model=Args, fn=down)
    ctx = ToolContext(run_id="1", idempotency_key="1:1")
    first = execute_tool(tool, ctx, {"order_id": "1"}, breaker=a, sleep=lambda s: None)
    assert first.attempts == THRESHOLD and not first.breaker_open

    second = execute_tool(tool, ctx, {"order_id": "2"}, breaker=b, sleep=lambda s: None)
    assert second.breaker_open and second.attempts == 0 and second.result is None
    assert second.error.startswith(f"circuit open for {tool_name} until ")
    assert calls == ["1"] * THRESHOLD


def test_redis_keys_are_prefixed_per_tool(settings, workers, tool_name):
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    a, _ = workers
    a.record_failure(tool_name)
    key = f"{settings.TOOL_BREAKER_KEY_PREFIX}{tool_name}"
    assert a.client.hgetall(key) == {"state": CLOSED, "failures": "1"}
    assert 0 < a.client.ttl(key) <= breakers.FAILURES_TTL_S


def test_a_success_forgets_the_failures_its_call_found_when_it_began(workers, tool_name,
                                                                     settings):
    """On Redis a call that found no breaker state sends nothing on success (a round trip
    saved on nearly every call); failures recorded while it ran stay counted, and a call
    that began with failures on the count clears them."""
    if not settings.REDIS_URL:
        pytest.skip("one process's store clears on every success: no round trip to save")
    a, b = workers
    assert b.allow(tool_name) == (True, None)  # no state when b's call begins
    a.record_failure(tool_name)  # a's call fails meanwhile
    b.record_success(tool_name)
    assert b.states()[tool_name]["failures"] == 1
    assert b.allow(tool_name) == (True, None)  # b's next call finds that failure
    b.record_success(tool_name)
    assert tool_name not in b.states()


def test_a_worker_trusts_a_stateless_breaker_for_its_quiet_window(settings, tool_name, clock):
    """On Redis, a tool found with no breaker state is not asked about again for
    ``TOOL_BREAKER_QUIET_SECONDS``: failures elsewhere reach this worker that much later,
    its own failures at once."""
    if not settings.REDIS_URL:
        pytest.skip("one process's store is read in memory: no round trip to save")
    settings.TOOL_BREAKER_FAILURES = 1
    settings.TOOL_BREAKER_QUIET_SECONDS = 1.0
    a, b = make_breaker_store(), make_breaker_store()
    a.clock = b.clock = clock
    asked = []
    script = b._allow
    b._allow = lambda **kwargs: asked.append(1) or script(**kwargs)

    assert b.allow(tool_name) == (True, None)
    assert b.allow(tool_name) == (True, None)
    assert asked == [1]  # the second call asked nothing
    a.record_failure(tool_name)  # opens it (threshold 1), on the other worker
    clock.advance(0.9)
    assert b.allow(tool_name) == (True, None)  # not seen yet: inside b's quiet window
    clock.advance(0.2)
    assert not b.allow(tool_name)[0]  # seen once the window is over
    assert len(asked) == 2

    b.reset(tool_name)
    assert b.allow(tool_name) == (True, None)  # stateless again: trusted again
    b.record_failure(tool_name)  # its own failure: b asks from now on
    assert not b.allow(tool_name)[0]
    clock.advance(-10)  # a clock set back trusts nothing either
    b.reset(tool_name)
    assert b.allow(tool_name) == (True, None)
    clock.advance(-10)
    calls = len(asked)
    b.allow(tool_name)
    assert len(asked) == calls + 1


def test_breaker_states_and_reset_on_the_process_store(tool_name):
    store = breaker_store()
    store.record_failure(tool_name)
    assert breaker_states()[tool_name]["failures"] == 1
    breakers.reset_breakers(tool_name)
    assert tool_name not in breaker_states()


def test_an_unreachable_redis_fails_open():
    store = RedisBreakerStore("redis://127.0.0.1:1/0", THRESHOLD, COOLDOWN)
    assert store.allow("lookup_order") == (True, None)
    store.record_failure("lookup_order")  # logged, not raised
    store.record_success("lookup_order")


def run_all(target: Any, stores: list[Any]) -> None:
    threads = [threading.Thread(target=target, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
