"""Per-tool circuit breakers: stop calling a backend that keeps failing, probe it later.

The state machine, per tool name:

- **closed**: calls go through; ``failure_threshold`` consecutive failures open it.
- **open** until ``now + cooldown_s``: every call is refused without reaching the tool.
- **half-open** after the cool-down: exactly one trial call is let through. Its success
  closes the breaker, its failure opens it again for another cool-down. A trial whose
  result never arrives (its worker died) does not wedge the breaker: after another
  cool-down the next caller becomes the trial.

The state must be shared by every worker, so the runtime only knows the ``BreakerStore``
protocol; ``runs/breakers.py`` implements it on Redis. ``InMemoryBreakerStore`` is the
same machine for one process (tests, and the embedded default, where everything is one
process). Times are wall-clock seconds (``time.time``), comparable across machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOLDOWN_S = 30.0


class BreakerStore(Protocol):
    def allow(self, tool: str) -> tuple[bool, float | None]:
        """May ``tool`` be called now? ``(False, until)`` while open: refused until ``until``."""

    def record_success(self, tool: str) -> None:
        """The tool's backend answered: close the breaker and forget past failures."""

    def record_failure(self, tool: str) -> None:
        """The tool's backend failed (transient error, timeout, crash of the tool)."""


@dataclass
class BreakerState:
    """One tool's breaker. ``until`` is the end of the open period, or of a half-open trial."""

    state: str = CLOSED
    failures: int = 0
    until: float | None = None

    def allow(self, now: float, cooldown_s: float) -> tuple[bool, float | None]:
        if self.state == CLOSED:
            return True, None
        assert self.until is not None
        if now < self.until:
            return False, self.until
        # Cool-down over (or the last trial never reported back): this caller is the trial.
        self.state, self.until = HALF_OPEN, now + cooldown_s
        return True, None

    def success(self) -> None:
        self.state, self.failures, self.until = CLOSED, 0, None

    def failure(self, now: float, threshold: int, cooldown_s: float) -> None:
        if self.state == OPEN:
            return  # a straggler that started before the breaker opened: nothing new
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= threshold:
            self.state, self.until = OPEN, now + cooldown_s


class InMemoryBreakerStore:
    """``BreakerStore`` for one process; thread-safe (worker threads share it)."""

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, BreakerState] = {}

    def allow(self, tool: str) -> tuple[bool, float | None]:
        with self._lock:
            breaker = self._breakers.get(tool)
            if breaker is None:
                return True, None
            return breaker.allow(self.clock(), self.cooldown_s)

    def record_success(self, tool: str) -> None:
        with self._lock:
            self._breakers.pop(tool, None)  # closed with no failures is the default

    def record_failure(self, tool: str) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(tool, BreakerState())
            breaker.failure(self.clock(), self.failure_threshold, self.cooldown_s)

    def states(self) -> dict[str, dict[str, object]]:
        """Every tool with a non-default breaker: ``{tool: {state, failures, until}}``."""
        with self._lock:
            return {name: asdict(b) for name, b in sorted(self._breakers.items())}

    def reset(self, tool: str | None = None) -> None:
        """Close one tool's breaker, or all of them."""
        with self._lock:
            if tool is None:
                self._breakers.clear()
            else:
                self._breakers.pop(tool, None)
