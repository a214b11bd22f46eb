"""Where a load benchmark's CPU goes: per process group, read from ``/proc`` (Linux).

On a 2-core machine the server, the database, Redis and the load generator share the
cores, so a throughput number means little without knowing who used them. A snapshot is
the cumulative CPU time of the web server's process group (the server and any worker
processes it forked), of every Postgres and Redis process, and of the whole machine; the
difference of two snapshots is what each used in between. Processes that exited in the
window (e.g. a Postgres backend of a closed connection) are counted through their parent's
``cutime``/``cstime`` once reaped.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SERVICES = {"postgres": "Postgres", "redis-server": "Redis"}


def _machine_busy() -> float:
    """Seconds all cores spent not idle since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def snapshot(web_pid: int) -> dict[str, float]:
    """Cumulative CPU seconds: the web server's process group, Postgres, Redis, machine."""
    totals: dict[str, float] = defaultdict(float)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        # fields after comm: state ppid pgrp session ... utime(11) stime(12) cutime cstime
        pgrp = int(rest[2])
        own = (int(rest[11]) + int(rest[12])) / TICK
        reaped = (int(rest[13]) + int(rest[14])) / TICK
        if pgrp == web_pid:
            totals["web server"] += own + reaped
            totals[f"web pid {proc.name}"] = own + reaped
        elif comm in SERVICES:
            totals[SERVICES[comm]] += own + reaped
    totals["machine"] = _machine_busy()
    return dict(totals)


def web_processes(before: dict[str, float], after: dict[str, float]) -> list[float]:
    """CPU seconds of each process of the web server's group (busiest first): a server
    process that got most of the connections shows here."""
    return sorted((after[name] - before.get(name, 0.0) for name in after
                   if name.startswith("web pid ")), reverse=True)


def used(before: dict[str, float], after: dict[str, float],
         generator_s: float) -> dict[str, float]:
    """CPU seconds used per process between two snapshots, the generator's, and the rest
    of the machine (anything else running, kernel work not charged to a process)."""
    out = {name: max(0.0, after.get(name, 0.0) - before.get(name, 0.0))
           for name in ("web server", *SERVICES.values())}
    out["load generator"] = generator_s
    machine = after["machine"] - before["machine"]
    out["everything else"] = max(0.0, machine - sum(out.values()))
    out["machine (all cores)"] = machine
    return out


def processes_seconds(pids: list[int]) -> float:
    """Cumulative CPU seconds of ``pids`` (all their threads, and their reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        total += sum(int(v) for v in rest[11:15]) / TICK
    return total
