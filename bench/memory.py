"""Resident memory of worker processes while a load benchmark runs (Linux ``/proc``).

A sampler thread reads ``VmRSS`` of each watched process (and of its children: a prefork
pool's processes) every ``interval`` seconds; the benchmark asks for the peak of their sum.
"""

from __future__ import annotations

import threading
import time
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
    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (time.time(), bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), sum(rss_bytes(p) for p in self.pids)))
            self._stop.wait(self.interval)

    def at(self, when: float) -> int:
        """The first sum sampled at or after ``when`` (``time.time()``)."""
        return next((b for t, b in self.samples if t >= when), 0)

    def peak(self, start: float = 0.0, stop: float = float("inf")) -> int:
        """The largest sum sampled between ``start`` and ``stop`` (``time.time()``)."""
        return max((b for t, b in self.samples if start <= t <= stop), default=0)
