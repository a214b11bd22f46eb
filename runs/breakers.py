"""The tool circuit breakers every worker shares (DESIGN principle 3).

With ``REDIS_URL`` set, each tool's breaker is a Redis hash ``agentdesk:breaker:<tool>``
(``state``, ``failures``, ``until``) changed only by Lua scripts, so the read-decide-write
of a transition is atomic across workers on any number of machines. On the embedded
default every worker is a thread of one process, so a process-wide
``InMemoryBreakerStore`` is already shared by all of them.

A breaker protects a backend; it must not become one. If Redis cannot be reached, calls
are allowed and the failure is logged (fail open): a Redis outage stops the broker too, so
nothing would run for long anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import redis
from django.conf import settings

from agentdesk.runtime.breaker import CLOSED, BreakerStore, InMemoryBreakerStore

log = logging.getLogger(__name__)
KEY_PREFIX = "agentdesk:breaker:"
# Consecutive failures are forgotten after a quiet day, so a stale count cannot linger.
FAILURES_TTL_S = 86_400

# KEYS[1] = breaker hash; ARGV = now, cooldown. Returns {allowed (0|1), until, pristine (0|1):
# no hash at all, so a success has no failures to forget}.
ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {1, '', 1} end
if state == 'closed' then return {1, '', 0} end
local now = tonumber(ARGV[1])
local until_s = redis.call('HGET', KEYS[1], 'until')
if until_s and now < tonumber(until_s) then return {0, until_s, 0} end
redis.call('HSET', KEYS[1], 'state', 'half_open',
           'until', string.format('%.17g', now + tonumber(ARGV[2])))
return {1, '', 0}
"""

# KEYS[1] = breaker hash; ARGV = now, threshold, cooldown, ttl. Returns the new state.
FAILURE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then return state end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or failures >= tonumber(ARGV[2]) then
  state = 'open'
  redis.call('HSET', KEYS[1], 'state', state,
             'until', string.format('%.17g', tonumber(ARGV[1]) + tonumber(ARGV[3])))
else
  redis.call('HSET', KEYS[1], 'state', state)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return state
"""


class RedisBreakerStore:
    """``BreakerStore`` on Redis: one state machine per tool, shared by every worker.

    A tool whose breaker this process found without any state (no failures anywhere) is
    trusted to stay so for ``quiet_s``: its calls in that time ask Redis nothing. So a
    tool step costs no round trip while its backend is healthy, which is nearly always
    (`make bench`, step overhead: 0.2–0.3 ms of a tool step's 1.6). The price: failures
    other processes record are seen here up to ``quiet_s`` late, so a breaker that opens
    elsewhere lets this process's calls through for at most that long (each failing call
    it makes is recorded at once, and from then on it asks Redis again). ``quiet_s`` 0
    asks on every call."""

    def __init__(
        self,
        url: str,
        failure_threshold: int,
        cooldown_s: float,
        *,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], float] = time.time,
        quiet_s: float = 0.0,
    ) -> None:
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self.failure_threshold = max(1, failure_threshold)
        self.cooldown_s = cooldown_s
        self.prefix = prefix
        self.clock = clock
        self._allow = self.client.register_script(ALLOW)
        self._failure = self.client.register_script(FAILURE)
        self._pristine = threading.local()  # tools whose last allow here found no state
        self.quiet_s = quiet_s
        self._quiet_until: dict[str, float] = {}  # tool: found stateless, trusted until

    def key(self, tool: str) -> str:
        return self.prefix + tool

    def allow(self, tool: str) -> tuple[bool, float | None]:
        now = self.clock()
        trusted = self._quiet_until.get(tool)
        if trusted is not None and now <= trusted <= now + self.quiet_s:  # not when set back
            self._found(tool, pristine=True)
            return True, None
        try:
            allowed, until, pristine = self._allow(
                keys=[self.key(tool)], args=[now, self.cooldown_s]
            )
        except redis.RedisError as exc:
            log.warning("breaker store unreachable, allowing %s: %s", tool, exc)
            return True, None
        self._found(tool, pristine=bool(pristine))
        if pristine and self.quiet_s > 0:
            self._quiet_until[tool] = now + self.quiet_s
        return bool(allowed), float(until) if until else None

    def _found(self, tool: str, *, pristine: bool) -> None:
        tools = self._pristine.__dict__.setdefault("tools", set())
        (tools.add if pristine else tools.discard)(tool)

    def record_success(self, tool: str) -> None:
        """Close the breaker and forget its failures: nothing to do when this thread's call
        found no failures when it asked (``allow``). Failures other workers record while
        the call runs then stay counted: a backend failing for them meanwhile is flapping,
        and counting them opens the breaker sooner, never later. It saves a round trip on
        nearly every tool call."""
        if tool in self._pristine.__dict__.get("tools", ()):
            self._found(tool, pristine=False)
            return
        try:
            self.client.delete(self.key(tool))  # closed with no failures is the default
        except redis.RedisError as exc:
            log.warning("breaker store unreachable, success of %s not recorded: %s", tool, exc)

    def record_failure(self, tool: str) -> None:
        self._found(tool, pristine=False)
        self._quiet_until.pop(tool, None)
        ttl = max(FAILURES_TTL_S, int(self.cooldown_s * 2) + 1)
        args = [self.clock(), self.failure_threshold, self.cooldown_s, ttl]
        try:
            state = self._failure(keys=[self.key(tool)], args=args)
        except redis.RedisError as exc:
            log.warning("breaker store unreachable, failure of %s not recorded: %s", tool, exc)
            return
        if state == "open":
            log.warning("circuit for tool %s is open", tool)

    def states(self) -> dict[str, dict[str, Any]]:
        found = {}
        for key in self.client.scan_iter(match=self.prefix + "*", count=100):
            row = self.client.hgetall(key)
            if row:
                found[key.removeprefix(self.prefix)] = {
                    "state": row.get("state", CLOSED),
                    "failures": int(row.get("failures", 0)),
                    "until": float(row["until"]) if row.get("until") else None,
                }
        return dict(sorted(found.items()))

    def reset(self, tool: str | None = None) -> None:
        keys = [self.key(tool)] if tool else list(self.client.scan_iter(match=self.prefix + "*"))
        if tool is None:  # this process starts over: it trusts nothing it found before
            self._quiet_until.clear()
        else:
            self._quiet_until.pop(tool, None)
        if keys:
            self.client.delete(*keys)


def make_breaker_store(redis_url: str | None = None) -> BreakerStore:
    """A store for the given (else the configured) Redis, or a new in-process one."""
    threshold = int(getattr(settings, "TOOL_BREAKER_FAILURES", 5))
    cooldown = float(getattr(settings, "TOOL_BREAKER_COOLDOWN_SECONDS", 30))
    url = settings.REDIS_URL if redis_url is None else redis_url
    if url:
        prefix = getattr(settings, "TOOL_BREAKER_KEY_PREFIX", KEY_PREFIX)
        quiet = float(getattr(settings, "TOOL_BREAKER_QUIET_SECONDS", 0))
        return RedisBreakerStore(url, threshold, cooldown, prefix=prefix, quiet_s=quiet)
    return InMemoryBreakerStore(threshold, cooldown)


@cache
def breaker_store() -> BreakerStore:
    """This process's store (Redis connections are pooled; in memory, the shared state)."""
    return make_breaker_store()


def breaker_states() -> dict[str, dict[str, Any]]:
    """``{tool: {state, failures, until}}`` for every tool whose breaker is not pristine."""
    store = breaker_store()
    assert isinstance(store, RedisBreakerStore | InMemoryBreakerStore)
    return store.states()


def reset_breakers(tool: str | None = None) -> None:
    """Close one tool's breaker, or all (an admin action; isolation between tests)."""
    store = breaker_store()
    assert isinstance(store, RedisBreakerStore | InMemoryBreakerStore)
    store.reset(tool)
