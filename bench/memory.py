"""Resident memory and CPU of a load benchmark's processes, sampled while it runs
(Linux ``/proc``).

A sampler thread reads ``VmRSS`` of each watched process (and of its direct children: a
prefork pool's processes) every ``interval`` seconds, and whatever cumulative CPU figures
``cpu_probe`` returns; the benchmark then asks for the peak memory, or the CPU used,
between two instants of its own (e.g. its steady-state window, not the workers' start-up).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


def rss_bytes(pid: int) -> int:
    """``VmRSS`` of ``pid`` and its direct children, in bytes (0 once it exited)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class Sampler:
    def __init__(self, pids: list[int], cpu_probe: Callable[[], dict[str, float]],
                 interval: float = 0.25) -> None:
        self.pids = pids
        self.cpu_probe = cpu_probe
        self.interval = interval
        # (time.time(), resident bytes of the pids, cumulative CPU seconds by name)
        self.samples: list[tuple[float, int, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), sum(rss_bytes(p) for p in self.pids),
                                 self.cpu_probe()))
            self._stop.wait(self.interval)

    def _at(self, when: float) -> tuple[float, int, dict[str, float]] | None:
        return next((s for s in self.samples if s[0] >= when), None)

    def rss_at(self, when: float) -> int:
        """The first resident sum sampled at or after ``when`` (``time.time()``)."""
        sample = self._at(when)
        return sample[1] if sample else 0

    def peak(self, start: float = 0.0, stop: float = float("inf")) -> int:
        """The largest resident sum sampled between ``start`` and ``stop``."""
        return max((s[1] for s in self.samples if start <= s[0] <= stop), default=0)

    def cpu_between(self, start: float, stop: float) -> tuple[float, float, dict[str, float]]:
        """The samples nearest after ``start`` and ``stop``: their times, and the CPU seconds
        used between them by name (empty when there is no such pair)."""
        first, last = self._at(start), self._at(stop) or (self.samples[-1] if self.samples
                                                          else None)
        if first is None or last is None or last[0] <= first[0]:
            return 0.0, 0.0, {}
        return first[0], last[0], {k: v - first[2].get(k, 0.0) for k, v in last[2].items()}
