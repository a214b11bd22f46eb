"""Where a submission's time goes: the CPU time of each part of the submit path, then
``cProfile`` over ``N`` submissions in this process.

The parts (``PARTS``): each is a function of the path (``module:attribute``) wrapped, while
``N`` submissions run, in a timer of this thread's CPU time (``time.thread_time``: waits
for the database or Redis are not counted, the driver's and the ORM's work is); a part's
time excludes the parts it calls (the enqueue runs inside the INSERT's commit, the
endpoint inside django-ninja), and what no part covers is Django and its middleware: what
the minimal view pays too. Measured without the profiler, so the numbers are real ones.

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
import functools
import importlib
import pstats
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# The parts of a submission: (label, the functions that are that part). A function missing
# from the code (renamed) is skipped, and the table says so.
PARTS = [
    ("API key (remembered, or read from the database)",
     ["runs.api_keys:remembered", "runs.api_keys:authenticate", "runs.api_keys:touch"]),
    ("rate limit + key generation (one Redis round trip)",
     ["runs.api.ratelimit:hit", "runs.api.ratelimit:hit_and_read"]),
    ("agent + policy snapshot (remembered; read again only when the INSERT's guard, or a "
     "database without one, finds the rows changed)",
     ["runs.agent_configs:remembered", "runs.agent_configs:config_for",
      "runs.agent_configs:AgentConfig.snapshot_id"]),
    ("input: size, schema, idempotency hash", ["runs.services:validate_input",
                                               "runs.services:request_hash"]),
    ("INSERT run + audit row, guarded by the agent's fingerprint on Postgres (and the commit)",
     ["runs.services:_insert_run"]),
    ("enqueue: Celery publish (one Redis round trip)", ["runs.enqueue:advance_run"]),
    # (django-ninja holds the endpoint function itself: its few lines count as ninja's)
    ("the service's own code, the response data (run_out)",
     ["runs.services:submit_run", "runs.api.endpoints:run_out"]),
    ("django-ninja: auth check, body parse + schema, the endpoint, response render",
     ["ninja.operation:Operation.run"]),
]
REST = "Django: request, middleware, URL resolution (the minimal view's share)"


@dataclass
class Profile:
    n: int
    wall_s: float
    total_s: float  # as cProfile counted it
    top: list[tuple[str, int, float, float]] = field(default_factory=list)  # name, calls, cum, own
    ours: list[tuple[str, int, float, float]] = field(default_factory=list)  # runs/, agentdesk/
    by_package: dict[str, float] = field(default_factory=dict)
    parts: Parts | None = None

    def metrics(self) -> dict[str, float]:
        out = {"api_submit_profiled_ms": round(1000 * self.wall_s / self.n, 2)}
        if self.parts is not None:
            out["api_submit_inprocess_cpu_ms"] = round(self.parts.per_request_ms(), 3)
        return out

    def markdown(self) -> str:
        lines = ["### Profile of the submit path", ""]
        if self.parts is not None:
            lines += self.parts.markdown()
        lines += [
            f"`cProfile` over {self.n} submissions through Django's test client in the "
            "bench's process (same middleware, endpoint, services, database and Redis as the "
            f"server; no ASGI server, no network): {1000 * self.wall_s / self.n:.2f} ms per "
            "submission under the profiler. " + next(
                para for para in (__doc__ or "").split("\n\n") if "Reported:" in para
            ).split(". ", 1)[1].replace("\n", " "),
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


@dataclass
class Parts:
    """CPU time of each part of ``n`` submissions (see the module's docstring)."""

    n: int
    cpu_s: float  # all of it: this thread's CPU time over the n submissions
    by_part: dict[str, float]  # label → CPU seconds, each part's own
    calls: dict[str, int]
    missing: list[str]
    floor_cpu_s: float  # the minimal view (or a 404) the same way, n times
    floor_label: str

    def per_request_ms(self) -> float:
        return 1000 * self.cpu_s / self.n

    def markdown(self) -> list[str]:
        rows = [*self.by_part.items(), (REST, self.cpu_s - sum(self.by_part.values()))]
        lines = [
            f"**CPU time by part** ({self.n} submissions through Django's test client in "
            "the bench's process — same middleware, endpoint, services, database and Redis "
            "as the server, no ASGI server and no network — each part's own CPU time in "
            "this thread, waits excluded, no profiler): "
            f"{self.per_request_ms():.2f} ms per submission, against "
            f"{1000 * self.floor_cpu_s / self.n:.2f} ms for {self.floor_label} measured the "
            "same way. The server adds its own per-request cost (uvicorn, the ASGI handler, "
            "the thread hop to the sync view) to both.",
            "",
            "| part | CPU ms per submission | share | calls per submission |",
            "|---|---|---|---|",
        ]
        for label, sec in rows:
            calls = self.calls.get(label)
            lines.append(f"| {label} | {1000 * sec / self.n:.3f} | "
                         f"{100 * sec / self.cpu_s:.0f} % | "
                         f"{'' if calls is None else f'{calls / self.n:.1f}'} |")
        lines.append(f"| **all** | **{self.per_request_ms():.3f}** | 100 % | |")
        if self.missing:
            lines += ["", "Not in the code (skipped): " + ", ".join(
                f"`{name}`" for name in self.missing) + "."]
        return lines + [""]


def _resolve(target: str) -> tuple[Any, str] | None:
    """``module:Class.attr`` → (the object holding the attribute, its name), or None."""
    module_name, _, path = target.partition(":")
    try:
        holder: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    *owners, name = path.split(".")
    for owner in owners:
        holder = getattr(holder, owner, None)
    return (holder, name) if holder is not None and hasattr(holder, name) else None


@contextmanager
def timed_parts(parts: list[tuple[str, list[str]]]) -> Iterator[tuple[dict, dict, list]]:
    """Wrap each part's functions in a CPU timer for as long as the block runs: yields
    (label → own CPU seconds, label → calls, targets not found). A stack keeps each part's
    time its own: a callee part's time is taken off its caller's."""
    own: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    missing: list[str] = []
    stack: list[float] = []  # CPU time of the callee parts of each running part
    patched: list[tuple[Any, str, Any]] = []

    def timer(label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            stack.append(0.0)
            try:
                return func(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                inner = stack.pop()
                own[label] += spent - inner
                calls[label] += 1
                if stack:
                    stack[-1] += spent
        return timed

    for label, targets in parts:
        for target in targets:
            found = _resolve(target)
            if found is None:
                missing.append(target)
                continue
            holder, name = found
            original = holder.__dict__[name] if isinstance(holder, type) else getattr(
                holder, name)
            patched.append((holder, name, original))
            setattr(holder, name, timer(label, original))
    try:
        yield own, calls, missing
    finally:
        for holder, name, original in reversed(patched):
            setattr(holder, name, original)


@dataclass(frozen=True)
class Floor:
    """What a submission's CPU time is set against: ``path`` under ``urlconf``."""

    path: str = "/api/v1/no-such-endpoint"
    label: str = "a `POST` to no endpoint (a JSON 404)"
    urlconf: str | None = None


def measure_parts(client: Any, body: dict[str, Any], n: int = N,
                  floor: Floor = Floor()) -> Parts:
    """The CPU time of each part over ``n`` submissions (``client``: Django's test client
    with the key's header), and of ``n`` requests to the floor for comparison."""
    from django.test import override_settings

    post = functools.partial(client.post, content_type="application/json")
    with override_settings(**({"ROOT_URLCONF": floor.urlconf} if floor.urlconf else {})):
        for _ in range(20):
            post(floor.path, body)
        started = time.thread_time()
        for _ in range(n):
            post(floor.path, body)
        floor_cpu = time.thread_time() - started
    with timed_parts(PARTS) as (own, calls, missing):
        started = time.thread_time()
        for _ in range(n):
            response = post("/api/v1/runs", body)
            if response.status_code != 201:
                raise RuntimeError(f"measured submission: {response.status_code}")
        spent = time.thread_time() - started
    return Parts(n=n, cpu_s=spent, by_part=dict(own), calls=dict(calls), missing=missing,
                 floor_cpu_s=floor_cpu, floor_label=floor.label)


def profile(raw_key: str, body: dict[str, Any], n: int = N,
            floor: Floor = Floor()) -> Profile:
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {raw_key}"})
    for _ in range(20):  # warm: imports, the key's cache entry, connections
        client.post("/api/v1/runs", body, content_type="application/json")
    parts = measure_parts(client, body, n, floor)
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
                   by_package=dict(by_package), parts=parts)
