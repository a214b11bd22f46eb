"""Where a submission's time goes: ``cProfile`` over ``N`` submissions in this process.

Django's test client sends ``POST /api/v1/runs`` through the same middleware, endpoint and
services as the server (no network, no ASGI server: the live measurement has those), against
the bench's database and Redis. Reported: the top functions by cumulative time as a share of
the whole, and the time spent in each package's own code (``tottime`` grouped by where the
function lives), so a reader sees both the path (view → service → INSERT, enqueue) and who
burns the CPU. cProfile slows Python code down (every call is counted), not the database
or Redis, so the shares lean a little towards Python.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

N = 300
TOP = 25
OURS = 15
CHAIN = 0.9  # functions above this share of the time are the request's chain of wrappers
# Which package a function belongs to, from its file path (first match wins).
PACKAGES = [
    ("/runs/api/", "runs.api (endpoints, auth, schemas)"),
    ("/runs/", "runs (services, models, enqueue, audit…)"),
    ("/agentdesk/", "agentdesk (settings, middleware, runtime)"),
    ("/ninja/", "django-ninja"),
    ("/pydantic", "pydantic"),
    ("/django/db/", "Django ORM"),
    ("/django/", "Django (request, middleware, test client)"),
    ("/psycopg", "psycopg (Postgres driver)"),
    ("/kombu/", "kombu (Celery's messaging)"),
    ("/celery/", "Celery"),
    ("/redis/", "redis-py"),
    ("/structlog/", "structlog"),
    ("/csp/", "django-csp"),
    ("/axes/", "django-axes"),
    ("/json/", "json"),
    ("/logging/", "logging"),
    ("/socket", "sockets (network waits)"),
    ("/selectors", "sockets (network waits)"),
]


@dataclass
class Profile:
    n: int
    wall_s: float
    total_s: float  # as cProfile counted it
    top: list[tuple[str, int, float, float]] = field(default_factory=list)  # name, calls, cum, own
    ours: list[tuple[str, int, float, float]] = field(default_factory=list)  # runs/, agentdesk/
    by_package: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return {"api_submit_profiled_ms": round(1000 * self.wall_s / self.n, 2)}

    def markdown(self) -> str:
        lines = [
            "### Profile of the submit path",
            "",
            f"`cProfile` over {self.n} submissions through Django's test client in the "
            "bench's process (same middleware, endpoint, services, database and Redis as the "
            f"server; no ASGI server, no network): {1000 * self.wall_s / self.n:.2f} ms per "
            "submission under the profiler. " + (__doc__ or "").split("\n\n")[1].split(
                ". ", 1)[1].replace("\n", " "),
            "",
            "**Time by package** (each function's own time, grouped by where it lives):",
            "",
            "| package | ms per submission | share |",
            "|---|---|---|",
        ]
        for name, sec in sorted(self.by_package.items(), key=lambda kv: -kv[1]):
            if sec / self.total_s >= 0.01:
                lines.append(f"| {name} | {1000 * sec / self.n:.3f} | "
                             f"{100 * sec / self.total_s:.0f} % |")
        lines += [
            "",
            "**The app's own functions by cumulative time** (`runs/`, `agentdesk/`; the path "
            "of a submission, below the middleware):",
            "",
            "| function | calls per submission | cumulative ms | share |",
            "|---|---|---|---|",
        ]
        for name, calls, cum, _own in self.ours:
            lines.append(f"| `{name}` | {calls / self.n:.1f} | {1000 * cum / self.n:.3f} | "
                         f"{100 * cum / self.total_s:.0f} % |")
        lines += [
            "",
            f"**Top {TOP} functions by cumulative time** (a caller includes its callees; "
            f"above them, the chain every request goes through — test client, Django's "
            f"handler, each middleware, django-ninja's operation — holds over "
            f"{100 * CHAIN:.0f} %):",
            "",
            "| function | calls per submission | cumulative ms | share | own ms |",
            "|---|---|---|---|---|",
        ]
        for name, calls, cum, own in self.top:
            lines.append(f"| `{name}` | {calls / self.n:.1f} | {1000 * cum / self.n:.3f} | "
                         f"{100 * cum / self.total_s:.0f} % | {1000 * own / self.n:.3f} |")
        return "\n".join(lines) + "\n"


def _where(filename: str) -> str:
    for needle, name in PACKAGES:
        if needle in filename:
            return name
    if filename.startswith("~") or filename.startswith("<"):
        return "built-ins (C functions)"
    return "other Python code"


def _label(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename.startswith("~"):
        return name
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line} {name}"


def profile(raw_key: str, body: dict[str, Any], n: int = N) -> Profile:
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {raw_key}"})
    for _ in range(20):  # warm: imports, the key's cache entry, connections
        client.post("/api/v1/runs", body, content_type="application/json")
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        response = client.post("/api/v1/runs", body, content_type="application/json")
        if response.status_code != 201:
            raise RuntimeError(f"profiled submission: {response.status_code}")
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tt, _ct, _callers) in raw.items():
        by_package[_where(func[0])] += tt
    root = ("~", 0, "<method 'disable' of '_lsprof.Profiler' objects>")
    # the request's chain of wrappers (test client, handler, each middleware, ninja) holds
    # the whole time: it is said once, and the table starts below it
    rows = sorted(((func, nc, ct, tt) for func, (_cc, nc, tt, ct, _callers) in raw.items()
                   if func != root and ct < CHAIN * total), key=lambda r: -r[2])
    top = [(_label(func), nc, ct, tt) for func, nc, ct, tt in rows[:TOP]]
    ours = [(_label(func), nc, ct, tt) for func, nc, ct, tt in rows
            if ("/runs/" in func[0] or "/agentdesk/" in func[0]) and "middleware" not in func[0]
            and ct >= 0.01 * total][:OURS]
    return Profile(n=n, wall_s=wall, total_s=total, top=top, ours=ours,
                   by_package=dict(by_package))
