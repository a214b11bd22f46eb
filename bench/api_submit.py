"""Authenticated ``POST /api/v1/runs`` against the real web server, with the load generator
in a process of its own.

The server is started by ``tests.stack.Stack`` as it is deployed: on Postgres + Redis,
``uvicorn agentdesk.asgi:application --workers N`` (the production command in the README);
on the embedded default, ``manage.py run_embedded --no-worker`` (one process: uvicorn,
SQLite, the in-process broker). No Celery worker consumes the queue while the load runs,
so every submission is really enqueued and the queue just grows; it is purged afterwards.
The load comes from ``bench.loadgen``: C requests in flight in a closed loop (each sent
when the previous answer arrived) over M keep-alive HTTP/1.1 connections, a fixed number of
requests after a warm-up. No request carries an idempotency key, so each one creates a run.

The anchor (``bench.anchors_view``): the same server also serves a minimal Django view,
and the same generator alternates between it and the submissions, ``ROUNDS`` blocks of
each; ``api_submit_vs_floor`` = submissions/s ÷ the minimal view's requests/s.

Only 2xx answers count. Afterwards the runs of the bench's key are counted in the database
(and, on Redis, the messages added to the Celery queue), and the bench fails if they differ
from the ``201 Created`` answers: an error is never throughput.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.stack import ROOT, Stack, production_mode

from . import api_profile, cpu, deploy
from .anchors_view import PATH, URLCONF, AnchoredStack
from .report import Section, Target, percentile, svg_histogram, text_histogram

section = Section("API submit")
TARGETS = {
    "api_submit_vs_floor": Target(">=", 0.5, "(submits/s ÷ minimal view's requests/s)"),
    "api_submit_p99_ms": Target("<=", 50.0, "ms"),
}
# Web server processes on Postgres + Redis: one uvicorn worker per core (see the README).
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_API_CONCURRENCY", "8"))
# Keep-alive connections the requests in flight are spread over (see bench.loadgen).
CONNECTIONS = int(os.environ.get("BENCH_API_CONNECTIONS", "32"))
REQUESTS = {"postgres+redis": 4_000, "embedded": 2_000}  # submissions in all, over ROUNDS
ROUNDS = 4  # each: a block of requests to the minimal view, then a block of submissions
WARMUP = 400
# Then shorter runs at other concurrencies: latency against load, for the report only.
SWEEP = [1, 4, 16]
SWEEP_REQUESTS = 600
# Far above the load, so the per-key limit (a feature: 429 past it) never throttles here.
RATE_LIMIT_PER_MINUTE = 10_000_000
BODY = {"agent": "support-refunds", "input": {"message": "Where is my order 1077?"}}


@dataclass
class Load:
    """What ``bench.loadgen`` measured: one entry per request, in start order."""

    seconds: float
    cpu_s: float
    connections: int
    per_process: list[int]  # connections held by each server process (when spread)
    latencies_ms: list[float]
    statuses: list[int]

    @property
    def ok(self) -> int:
        return sum(1 for code in self.statuses if 200 <= code < 300)

    @property
    def created(self) -> int:
        return self.statuses.count(201)

    def ok_latencies(self) -> list[float]:
        return [ms for ms, code in zip(self.latencies_ms, self.statuses, strict=True)
                if 200 <= code < 300]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    @classmethod
    def merged(cls, loads: list[Load]) -> Load:
        """Blocks of the same load, as one: their times and requests added up."""
        return cls(seconds=sum(x.seconds for x in loads), cpu_s=sum(x.cpu_s for x in loads),
                   connections=sum(x.connections for x in loads),
                   per_process=loads[0].per_process,
                   latencies_ms=[ms for x in loads for ms in x.latencies_ms],
                   statuses=[code for x in loads for code in x.statuses])


def run() -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="agentdesk-bench-api_submit-"))
    deploy._isolate("api_submit", workdir)
    production = production_mode()
    stack = AnchoredStack(
        workdir=workdir, name="agentdesk_bench_api_submit", workers=0, web=True,
        latency_scale=0, password=deploy.PASSWORD,
        web_args=["--workers", str(WEB_WORKERS)] if production else ["--no-worker"],
    )
    try:
        stack.start()
        for var in ("DATABASE_URL", "CELERY_QUEUE", "CHANNELS_PREFIX", "CACHE_PREFIX",
                    "LLMSIM_PORT", "AGENTDESK_DATA_DIR"):
            os.environ[var] = stack.env[var]
        deploy._setup_django(migrate=False)
        return measure(stack, workdir)
    finally:
        from django.db import connections

        connections.close_all()
        stack.stop()
        if production:
            deploy.purge_queue(stack.env["CELERY_QUEUE"])
        deploy.tidy(workdir, stack.env.get("DATABASE_URL", ""))


def measure(stack: Stack, workdir: Path) -> dict[str, float]:
    from runs.api_keys import create_api_key
    from runs.models import Run, Team

    key = create_api_key(team=Team.objects.get(slug="demo"), name="bench",
                         scopes="submit,read", rate_limit_per_minute=RATE_LIMIT_PER_MINUTE)
    body = workdir / "body.json"
    body.write_text(json.dumps(BODY))
    url = f"{stack.base_url}/api/v1/runs"
    warm = generate(url, key.raw, body, WARMUP, CONCURRENCY, workdir)
    if warm.created != WARMUP:
        raise RuntimeError(f"warm-up: {warm.created} of {WARMUP} requests answered 201 "
                           f"(statuses {sorted(set(warm.statuses))}); see {workdir}/web.log")
    view_url = f"{stack.base_url}{PATH}"
    generate(view_url, key.raw, body, WARMUP, CONCURRENCY, workdir)
    count = REQUESTS[deploy.mode()]
    queued_before = queue_length(stack)
    web = stack.procs["web"].pid
    loads, views, useds, splits = [], [], [], []
    for _ in range(ROUNDS):
        views.append(generate(view_url, key.raw, body, count // ROUNDS, CONCURRENCY, workdir))
        before = cpu.snapshot(web)
        loads.append(generate(url, key.raw, body, count // ROUNDS, CONCURRENCY, workdir))
        after = cpu.snapshot(web)
        useds.append(cpu.used(before, after, generator_s=loads[-1].cpu_s))
        splits.append(cpu.web_processes(before, after))
    load, view = Load.merged(loads), Load.merged(views)
    if set(view.statuses) != {200}:
        raise RuntimeError(f"the minimal view answered {sorted(set(view.statuses))}")
    count = len(load.statuses)
    used = {name: sum(u[name] for u in useds) for name in useds[0]}
    split = [sec for sec in (sum(secs) for secs in zip(*splits, strict=False))
             if sec > 0.05 * load.seconds]
    runs = Run.objects.filter(api_key=key.key).count() - WARMUP
    queued = queue_length(stack)
    enqueued = None if queued is None or queued_before is None else queued - queued_before
    if runs != load.created or load.ok != load.created or (
            enqueued is not None and enqueued != runs):
        raise RuntimeError(f"{load.ok} requests answered 2xx, {load.created} of them 201, "
                           f"{runs} runs created, {enqueued} messages enqueued: they must "
                           "all agree")
    before = cpu.snapshot(web)
    floor = generate(f"{stack.base_url}/api/v1/no-such-endpoint", key.raw, body,
                     SWEEP_REQUESTS, CONCURRENCY, workdir)
    floor_cpu = cpu.used(before, cpu.snapshot(web), generator_s=floor.cpu_s)["web server"]
    if set(floor.statuses) != {404}:
        raise RuntimeError(f"expected only 404s from no endpoint: {set(floor.statuses)}")
    sweep = [(c, generate(url, key.raw, body, SWEEP_REQUESTS, c, workdir)) for c in SWEEP]
    created = sum(s.created for _, s in sweep)
    total = Run.objects.filter(api_key=key.key).count() - WARMUP - load.created
    if total != created or any(s.ok != s.created for _, s in sweep):
        raise RuntimeError(f"concurrency sweep: {created} answers 201, {total} runs created")
    lat = load.ok_latencies()
    view_lat = view.ok_latencies()
    metrics = {
        "anchor_view_rps": round(view.rps, 1),
        "anchor_view_p50_ms": round(percentile(view_lat, 50), 2),
        "anchor_view_p99_ms": round(percentile(view_lat, 99), 2),
        "api_submit_vs_floor": round(load.rps / view.rps, 3),
        "api_submit_rps": round(load.ok / load.seconds, 1),
        "api_submit_p50_ms": round(percentile(lat, 50), 2),
        "api_submit_p95_ms": round(percentile(lat, 95), 2),
        "api_submit_p99_ms": round(percentile(lat, 99), 2),
        "api_submit_errors": float(count - load.ok),
        "api_submit_generator_cpu_pct": round(100 * load.cpu_s / load.seconds, 1),
    }
    per_request = requests_cost(key.raw)
    profile = api_profile.profile(key.raw, BODY, floor=api_profile.Floor(
        path=PATH, label=f"the minimal view (`{PATH}`)", urlconf=URLCONF))
    metrics.update(profile.metrics())
    write_section(metrics, count, load, used, split, per_request, enqueued, sweep,
                  (floor, floor_cpu), list(zip(views, loads, strict=True)))
    section.add(profile.markdown())
    return metrics


def generate(url: str, raw_key: str, body: Path, count: int, concurrency: int,
             workdir: Path) -> Load:
    """``count`` requests from ``bench.loadgen`` in a process of its own."""
    out = workdir / "load.json"
    cmd = [sys.executable, "-m", "bench.loadgen", url, "--body", str(body),
           "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {raw_key}",
           "-n", str(count), "-c", str(concurrency), "-m", str(max(CONNECTIONS, concurrency)),
           "--processes", str(WEB_WORKERS if production_mode() else 1), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=60 + count / 20)
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{proc.stderr[-3000:]}")
    data = json.loads(out.read_text())
    return Load(seconds=data["seconds"], cpu_s=data["cpu_seconds"],
                connections=data["connections_opened"],
                per_process=data["connections_per_server_process"],
                latencies_ms=[us / 1000 for us in data["latency_us"]], statuses=data["status"])


def queue_length(stack: Stack) -> int | None:
    """Messages waiting in the run queue (Redis only: the memory broker is in the server)."""
    if not production_mode():
        return None
    import redis

    return int(redis.Redis.from_url(os.environ["REDIS_URL"]).llen(stack.env["CELERY_QUEUE"]))


def requests_cost(raw_key: str, n: int = 50) -> dict[str, float]:
    """SQL statements and Redis round trips of one submission: the same view, middleware
    and services in this process (Django's test client, no network), counted at the
    database connection and at redis-py (the cache, the rate limit and Celery's broker)."""
    import redis
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    calls = {"redis": 0}
    originals = (redis.Redis.execute_command, redis.client.Pipeline.execute)

    def command(self, *args, **kwargs):
        calls["redis"] += 1
        return originals[0](self, *args, **kwargs)

    def pipeline(self, *args, **kwargs):
        calls["redis"] += 1
        return originals[1](self, *args, **kwargs)

    client = Client(headers={"Authorization": f"Bearer {raw_key}"})
    client.post("/api/v1/runs", BODY, content_type="application/json")  # warm
    redis.Redis.execute_command = command
    redis.client.Pipeline.execute = pipeline
    try:
        with CaptureQueriesContext(connection) as queries:
            for _ in range(n):
                response = client.post("/api/v1/runs", BODY, content_type="application/json")
                if response.status_code != 201:
                    raise RuntimeError(f"in-process submission: {response.status_code}")
    finally:
        redis.Redis.execute_command, redis.client.Pipeline.execute = originals
    out = {"sql": len(queries) / n}
    if production_mode():
        out["redis"] = calls["redis"] / n
    return out


def write_section(metrics: dict[str, float], count: int, load: Load, used: dict[str, float],
                  split: list[float], per_request: dict[str, float], enqueued: int | None,
                  sweep: list[tuple[int, Load]], floor: tuple[Load, float],
                  rounds: list[tuple[Load, Load]]) -> None:
    s = section
    s.lines.clear()
    cores = os.cpu_count() or 1
    if production_mode():
        topology = (f"`uvicorn agentdesk.asgi:application --workers {WEB_WORKERS}` "
                    f"({WEB_WORKERS} server processes) on Postgres + Redis; no Celery worker "
                    "runs, so the queue grows by one message per run")
    else:
        topology = ("`manage.py run_embedded --no-worker` (one process: uvicorn, SQLite WAL, "
                    "the in-process broker)")
    topology += (" — with `DJANGO_SETTINGS_MODULE=bench.anchors_view_settings`: the app's "
                 "settings plus the anchor's one URL")
    s.add(f"**Mode:** {deploy.mode_label()}. **Server:** {topology}. **Load:** "
          f"`bench.loadgen` (its own process): {CONCURRENCY} requests in flight in a closed "
          f"loop (each sent when the previous answer arrived) over {CONNECTIONS} keep-alive "
          f"HTTP/1.1 connections, {count:,} requests in {ROUNDS} blocks after {WARMUP} warm-up "
          "requests; each is "
          "`POST /api/v1/runs` with a bearer key (scopes submit, read) and no idempotency "
          f"key. The key's rate limit is {RATE_LIMIT_PER_MINUTE:,}/min, so the per-key limit "
          "(a feature: `429` past it) never throttles here — it is still counted in the "
          "cache on every request.")
    s.verdicts(metrics, TARGETS, why_missed(metrics, used, split, load))
    s.add(f"**The anchor:** a minimal Django view (`{PATH}`: a sync function returning "
          "`{\"ok\": true}`, behind the app's whole middleware) on the same server processes, "
          "with the same generator, concurrency, connections and request body; "
          f"{ROUNDS} rounds of a block of each, alternating:")
    s.table(["round", "minimal view requests/s", "submits/s", "ratio",
             "view p50 / p99 ms", "submit p50 / p99 ms"],
            [[i + 1, f"{v.rps:,.0f}", f"{x.rps:,.0f}", f"{x.rps / v.rps:.2f}",
              f"{percentile(v.ok_latencies(), 50):.1f} / {percentile(v.ok_latencies(), 99):.1f}",
              f"{percentile(x.ok_latencies(), 50):.1f} / {percentile(x.ok_latencies(), 99):.1f}"]
             for i, (v, x) in enumerate(rounds)]
            + [["all", f"{metrics['anchor_view_rps']:,.0f}", f"{metrics['api_submit_rps']:,.0f}",
                f"{metrics['api_submit_vs_floor']:.2f}",
                f"{metrics['anchor_view_p50_ms']:.1f} / {metrics['anchor_view_p99_ms']:.1f}",
                f"{metrics['api_submit_p50_ms']:.1f} / {metrics['api_submit_p99_ms']:.1f}"]])
    checked = (f"{enqueued:,} messages added to the Celery queue" if enqueued is not None
               else "(the in-process broker cannot be read from outside the server)")
    s.table(["", ""], [
        ["requests answered `201 Created`", load.created],
        ["errors (not 2xx, refused, timed out)", int(metrics["api_submit_errors"])],
        ["runs created by the bench's key (counted in the database)", load.created],
        ["enqueued", checked],
        ["connections opened", load.connections],
        ["wall time", f"{load.seconds:.2f} s"],
        ["requests/s (2xx only)", metrics["api_submit_rps"]],
        ["latency p50 / p95 / p99 / max (2xx only)",
         f"{metrics['api_submit_p50_ms']:.1f} / {metrics['api_submit_p95_ms']:.1f} / "
         f"{metrics['api_submit_p99_ms']:.1f} / {max(load.latencies_ms):.1f} ms"],
        ["load generator CPU", f"{load.cpu_s:.2f} s = "
         f"{metrics['api_submit_generator_cpu_pct']:.0f} % of one core "
         f"({1e6 * load.cpu_s / max(count, 1):.0f} µs per request: one core would drive "
         f"about {count / max(load.cpu_s, 1e-9):,.0f} requests/s"
         + (", so it is not the limit)" if metrics["api_submit_generator_cpu_pct"] < 50
            else ": it may be the limit)")],
    ])
    if per_request:
        parts = [f"{per_request['sql']:.1f} SQL statements (BEGIN and COMMIT included)"]
        if "redis" in per_request:
            parts.append(f"{per_request['redis']:.1f} Redis round trips")
        s.add("One submission costs " + " and ".join(parts) + ", counted in the bench's "
              "process over 50 submissions through Django's test client (same middleware, "
              "view and services; no network).")
    nothing, nothing_cpu = floor
    s.add(f"The floor of any request on this server: {SWEEP_REQUESTS:,} `POST`s to a path "
          f"with no endpoint ({CONCURRENCY} in flight; uvicorn, Django's ASGI handler and "
          "middleware, URL resolution, a JSON `404`) ran at "
          f"{len(nothing.statuses) / nothing.seconds:,.0f}/s with "
          f"{1000 * nothing_cpu / len(nothing.statuses):.2f} ms of web-server CPU each, "
          f"against {1000 * used['web server'] / max(load.ok, 1):.2f} ms for a submission.")
    s.add(f"**Where the CPU went** during the measurement ({cores} cores × "
          f"{load.seconds:.1f} s = {cores * load.seconds:.1f} core-seconds; read from "
          "`/proc`):")
    s.table(["process", "CPU seconds", "share of the machine", "per request"],
            [[name, f"{sec:.2f}", f"{100 * sec / (cores * load.seconds):.0f} %",
              f"{1000 * sec / max(load.ok, 1):.2f} ms"] for name, sec in used.items()
             if production_mode() or name not in ("Postgres", "Redis")])
    if production_mode() and split:
        s.add("CPU of each busy web server process: " + ", ".join(
            f"{sec:.1f} s ({100 * sec / sum(split):.0f} %)" for sec in split) + ". uvicorn's "
            "processes share one listening socket and the kernel hands most new connections "
            "to one of them, while a keep-alive connection stays with its process; so the "
            "generator, as a load balancer would, spread its connections evenly over the "
            f"processes ({' + '.join(str(n) for n in load.per_process) or 'not done: no `ss`'}"
            ", found with `ss`) and sends each request on the connection idle longest. "
            "Without that, the measurement was of one process half the time.")
    rows = []
    for concurrency, run in sorted([*sweep, (CONCURRENCY, load)], key=lambda item: item[0]):
        ok = run.ok_latencies()
        rows.append([concurrency, run.created, f"{run.ok / run.seconds:.1f}",
                     f"{percentile(ok, 50):.1f}", f"{percentile(ok, 95):.1f}",
                     f"{percentile(ok, 99):.1f}", len(run.statuses) - run.ok])
    s.add(f"The same server at other concurrencies ({SWEEP_REQUESTS:,} requests each, after "
          "the measurement above; each checked the same way): with the machine saturated, "
          "more connections only queue.")
    s.table(["requests in flight", "201 answers", "requests/s", "p50 ms", "p95 ms", "p99 ms",
             "errors"], rows)
    lat = load.ok_latencies()
    s.add(f"Latency of each request at {CONCURRENCY} in flight:")
    s.add(svg_histogram(lat, "ms", {"p50": metrics["api_submit_p50_ms"],
                                    "p99": metrics["api_submit_p99_ms"],
                                    "target p99": TARGETS["api_submit_p99_ms"].value}))
    s.add(text_histogram(lat, "ms"))


def why_missed(metrics: dict[str, float], used: dict[str, float], split: list[float],
               load: Load) -> dict[str, str]:
    """What bounds the rate when a target is missed: the measured numbers, not a guess."""
    cores = os.cpu_count() or 1
    busy = used["machine (all cores)"] / (cores * load.seconds)
    web = 1000 * used["web server"] / max(load.ok, 1)
    per_request = 1000 * used["machine (all cores)"] / max(load.ok, 1)
    processes = ", ".join(f"{100 * sec / load.seconds:.0f} %" for sec in split) or "?"
    out = {}
    if not TARGETS["api_submit_vs_floor"].met(metrics["api_submit_vs_floor"]):
        out["api_submit_vs_floor"] = (
            f"CPU: {web:.1f} ms of web-server CPU per request ({per_request:.1f} ms with the "
            f"database, Redis and the generator); the server's {len(split)} process(es) used "
            f"{processes} of a core (Python code runs one thread at a time per process), the "
            f"machine was {100 * busy:.0f} % busy")
    if not TARGETS["api_submit_p99_ms"].met(metrics["api_submit_p99_ms"]):
        out["api_submit_p99_ms"] = (
            f"{CONCURRENCY} requests in flight share busy server processes: each waits for "
            "the others' CPU time" + ("" if production_mode() else
                                      "; SQLite lets one transaction write at a time and "
                                      "a waiting writer backs off, which makes the tail"))
    return out
