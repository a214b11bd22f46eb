"""Steps committed per second with hundreds of runs in flight and slow model calls.

The simulator answers a sim-small call in ~500 ms (latency scale 500/150; sim-large takes
4× its base). Runs of the plain evaluation tasks (order status, refunds under and over the
approval amount) are all submitted first, then workers start: Postgres + Redis — two
``celery -A agentdesk worker --pool threads -c 100`` processes (a thread, not a process,
waits on each model call); embedded — the in-process worker pool with 200 threads. The
rate is counted from ``Step.created_at`` in the steady state: from when 10 % of the steps
are committed until fewer than 200 runs are left in flight (submitted, not yet ended or
waiting for a human).

``throughput_efficiency`` (issue 16) = that rate ÷ the ideal, in-flight ÷ model latency:
with at least N runs in flight all through the window (N = the fewest seen, ≥ 200) and each
step waiting ~500 ms on its model, a perfect engine would commit N / 0.5 s steps per second.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left, bisect_right
from concurrent.futures import ThreadPoolExecutor

from . import cpu, deploy, memory, workload
from .report import Section, Target, fmt, svg_series

section = Section("Throughput")
TARGETS = {"throughput_efficiency": Target(">=", 0.8, "(steps/s ÷ in-flight ÷ latency)")}
SMALL_CALL_MS = 500
# The configuration; BENCH_WORKERS=PxT overrides it for experiments.
PROCESSES, THREADS = (int(n) for n in os.environ.get("BENCH_WORKERS", "2x100").split("x"))
IN_FLIGHT = 200
RUNS = {"postgres+redis": 600, "embedded": 500}
SUBMIT_THREADS = 8
TIME_CAP_S = 120


def run() -> dict[str, float]:
    env = deploy.for_workers("throughput", latency_scale=deploy.latency_scale_for(SMALL_CALL_MS))
    try:
        tasks = workload.load_tasks_plain()
        team = workload.make_team("bench-throughput")
        count = RUNS[deploy.mode()]
        started = time.monotonic()
        with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
            ids = list(pool.map(lambda i: _submit(team, tasks[i % len(tasks)]["message"]),
                                range(count)))
        submit_s = time.monotonic() - started
        with env.running(PROCESSES, THREADS), \
                memory.Sampler(env.worker_pids(), lambda: _cpu(env)) as sampled:
            began = time.monotonic()
            settled = deploy.settle(ids, timeout=TIME_CAP_S)
            elapsed = time.monotonic() - began
        rows = _steps(ids)
        outcomes = _outcomes(ids)
        errors = env.worker_errors()
        limit = _max_connections()
    finally:
        env.close()
    return _summarise(count, submit_s, elapsed, settled, rows, outcomes, errors, limit, sampled)


def _cpu(env) -> dict[str, float]:
    """Cumulative CPU seconds so far: the workers, the simulator, Postgres, Redis, all."""
    services = cpu.snapshot(web_pid=-1)
    return {"workers": cpu.processes_seconds(env.worker_pids()),
            "simulator": cpu.processes_seconds(env.simulator_pids()),
            "Postgres": services.get("Postgres", 0.0), "Redis": services.get("Redis", 0.0),
            "machine": services["machine"]}


def _cpu_table(used: dict[str, float], elapsed: float, steps: int,
               metrics: dict[str, float]) -> None:
    """Who used the cores while the runs went through: on 2 cores the workers, the
    simulator, Postgres and Redis share them, and a saturated machine is the ceiling."""
    cores = os.cpu_count() or 1
    machine = used["machine"]
    known = used["workers"] + used["simulator"] + used["Postgres"] + used["Redis"]
    parts = [("worker processes", used["workers"]), ("LLM simulator", used["simulator"]),
             ("Postgres", used["Postgres"]), ("Redis", used["Redis"]),
             ("everything else (other processes, the kernel)", max(0.0, machine - known)),
             ("machine (all cores)", machine)]
    rows = [[name, f"{secs:.1f}", f"{secs / (elapsed * cores):.0%}",
             f"{secs / max(steps, 1) * 1000:.2f}"] for name, secs in parts]
    section.add(f"**CPU** in the steady-state window ({elapsed:.1f} s × {cores} cores, sampled "
                f"from `/proc`, {steps:,} steps committed): the machine was "
                f"{machine / (elapsed * cores):.0%} busy. A step costs the machine the CPU in "
                "the last column, whatever waits on the model: the ideal above needs the "
                "cores to keep up with it.")
    section.table(["process", "CPU seconds", "share of the machine", "ms per step"], rows)
    if known and steps:
        ceiling = cores / (known / steps)  # steps/s these costs allow on idle cores
        metrics["throughput_cpu_ceiling_steps_per_s"] = round(ceiling, 1)
        share = ceiling / metrics["throughput_ideal_steps_per_s"]
        section.add(f"The stack's own CPU per step (workers, simulator, Postgres, Redis: "
                    f"{known / steps * 1000:.2f} ms) allows at most {ceiling:.0f} steps/s on "
                    f"{cores} otherwise idle cores: **{share:.2f} of the ideal**. Past that "
                    "the runs wait for a core, not for the model — fewer CPU milliseconds "
                    "per step (or more cores) is what raises the efficiency.")


def _submit(team, message: str) -> int:
    from django.db import connection

    try:
        return workload.submit(team, message)
    finally:
        connection.close()


def _steps(ids: list[int]) -> list[tuple[int, float, str]]:
    from runs.models import Step

    rows = Step.objects.filter(run_id__in=ids).order_by("created_at")
    return [(r, at.timestamp(), kind) for r, at, kind in
            rows.values_list("run_id", "created_at", "kind")]


def _max_connections() -> str:
    from django.db import connection

    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cur:
        cur.execute("SHOW max_connections")
        return str(cur.fetchone()[0])


def _outcomes(ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from runs.models import Run

    rows = Run.objects.filter(pk__in=ids).values("status", "reason").annotate(n=Count("id"))
    return {f"{r['status']}/{r['reason'] or '-'}": r["n"] for r in rows}


def _summarise(count, submit_s, elapsed, settled, rows, outcomes, errors,
               limit: str, sampled: memory.Sampler) -> dict[str, float]:
    times = [t for _, t, _ in rows]
    if not times:
        raise RuntimeError("no step was committed: did the workers start?")
    t0 = times[0]
    ended = {}
    for run_id, at, kind in rows:  # a run ends with a final or escalation step
        if kind in ("final", "escalation"):
            ended[run_id] = at
    end_times = sorted(ended.values())
    # Window: from 10 % of steps committed until fewer than IN_FLIGHT runs are left open.
    start = times[int(len(times) * 0.10)]
    stop_index = count - IN_FLIGHT
    stop = end_times[stop_index - 1] if 0 < stop_index <= len(end_times) else times[-1]
    window = max(stop - start, 1e-6)
    in_window = bisect_right(times, stop) - bisect_left(times, start)
    rate = in_window / window
    first = {}
    for run_id, at, _ in rows:
        first.setdefault(run_id, at)
    starts = sorted(first.values())
    samples = []
    for k in range(int(times[-1] - t0) + 1):
        t = t0 + k + 0.5
        done = bisect_right(end_times, t)
        active = bisect_right(starts, t) - done
        per_s = bisect_right(times, t0 + k + 1) - bisect_left(times, t0 + k)
        samples.append((k + 0.5, per_s, count - done, active))
    steady = [s for s in samples if start - t0 <= s[0] <= stop - t0]
    started_in_window = bisect_right(starts, stop) - bisect_left(starts, start)
    stranded = sum(n for k, n in outcomes.items() if k.split("/")[0] in ("queued", "running"))
    in_flight = min((s[2] for s in steady), default=IN_FLIGHT)
    ideal = in_flight / (SMALL_CALL_MS / 1000)
    metrics = {
        "throughput_efficiency": round(rate / ideal, 3),
        "throughput_ideal_steps_per_s": round(ideal, 1),
        "throughput_steps_per_s": round(rate, 1),
        "throughput_runs_stranded": stranded,
        "throughput_runs_in_flight_min": min((s[2] for s in steady), default=0),
        "throughput_runs_active_mean": round(
            sum(s[3] for s in steady) / len(steady), 1) if steady else 0.0,
        "throughput_runs_started_per_s": round(started_in_window / window, 1),
    }
    peak = sampled.peak(start, stop) / 2**20
    if peak:  # worker memory: the peak in the window over the workers' at the first step
        first = sampled.rss_at(t0) / 2**20
        metrics["throughput_worker_rss_start_mb"] = round(first, 1)
        metrics["throughput_worker_rss_peak_mb"] = round(peak, 1)
        metrics["throughput_worker_mb_per_100_in_flight"] = round(
            (peak - first) / max(metrics["throughput_runs_in_flight_min"], 1) * 100, 1)
    _write_section(metrics, count, submit_s, elapsed, settled, rows, outcomes, samples,
                   (start - t0, stop - t0), window, in_window, errors, limit)
    first, last, used = sampled.cpu_between(start, stop)
    if used:
        _cpu_table(used, last - first, bisect_right(times, last) - bisect_left(times, first),
                   metrics)
    return metrics


def _write_section(metrics, count, submit_s, elapsed, settled, rows, outcomes, samples,
                   band, window, in_window, errors, limit) -> None:
    s = section
    s.lines.clear()
    workers = (f"{PROCESSES} worker processes × `--pool threads -c {THREADS}`"
               if deploy.mode() == "postgres+redis"
               else f"one process (embedded), worker pool of {PROCESSES * THREADS} threads")
    s.add(f"**Mode:** {deploy.mode_label()}. **Size:** {count} runs submitted before the "
          f"workers start ({submit_s:.1f} s to submit), {workers}; sim-small call "
          f"≈ {SMALL_CALL_MS} ms. **How:** " + (__doc__ or "").split("\n\n")[1].replace(
              "\n", " "))
    threads = PROCESSES * THREADS
    active = metrics["throughput_runs_active_mean"]
    why = {}
    if not TARGETS["throughput_efficiency"].met(metrics["throughput_efficiency"]):
        why["throughput_efficiency"] = (
            f"only {fmt(active)} of {threads} worker threads advance a run at a time on average "
            f"(runs start at {fmt(metrics['throughput_runs_started_per_s'])}/s); see below")
    s.verdicts(metrics, TARGETS, why)
    s.table(["", ""], [
        ["steps committed per second in the window (measured)",
         metrics["throughput_steps_per_s"]],
        ["ideal: runs in flight (the fewest in the window) ÷ model latency",
         f"{fmt(metrics['throughput_runs_in_flight_min'])} ÷ {SMALL_CALL_MS / 1000:g} s = "
         f"{fmt(metrics['throughput_ideal_steps_per_s'])} steps/s"],
        ["efficiency (measured ÷ ideal)", metrics["throughput_efficiency"]],
        ["steps committed in the window", in_window],
        ["window", f"{window:.1f} s (t = {band[0]:.1f} … {band[1]:.1f} s)"],
        ["all steps", len(rows)],
        ["all runs settled", f"yes, {elapsed:.0f} s after the workers started" if settled
         else f"no: stopped after {elapsed:.0f} s ({metrics['throughput_runs_stranded']} runs "
         "never finished)"],
        ["min runs in flight in the window", metrics["throughput_runs_in_flight_min"]],
        ["mean runs being advanced at once", metrics["throughput_runs_active_mean"]],
        ["runs started per second in the window", metrics["throughput_runs_started_per_s"]],
        ["worker memory (resident, all worker processes): at the first step → peak in the "
         "window", f"{fmt(metrics.get('throughput_worker_rss_start_mb', 0))} → "
         f"{fmt(metrics.get('throughput_worker_rss_peak_mb', 0))} MB"],
        ["worker memory per 100 runs in flight ((peak − first) ÷ the fewest in flight × 100)",
         f"{fmt(metrics.get('throughput_worker_mb_per_100_in_flight', 0))} MB"],
    ])
    if active < threads / 2:
        s.add(f"Fewer runs are advanced at once ({fmt(active)}) than there are threads "
              f"({threads}) although hundreds wait in the queue: the workers take runs off the "
              f"queue at {fmt(metrics['throughput_runs_started_per_s'])}/s, and each run then "
              "takes far longer than its model calls (see the per-step CPU cost under *Step "
              "overhead*). On these 2 cores the worker processes share the CPU with the "
              "simulator, the database, Redis and whatever else runs on the machine (load "
              "average below); in a process whose threads are busy with Python work, the "
              "thread that fetches the next task from the broker waits for the GIL.")
    if metrics["throughput_runs_stranded"]:
        s.add(f"{metrics['throughput_runs_stranded']} runs never ran: their task raised (see "
              "the errors) and nothing retries a failed `advance_run`, nor re-enqueues a run "
              "left `queued` (the reaper looks at expired leases). Each worker thread holds "
              "a database connection for its whole run, model calls included, so "
              f"{threads} threads need up to {threads} Postgres connections"
              + (f" — the server allows {limit}." if limit else "."))
    s.add("Run end states: " + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(outcomes.items())))
    if errors:
        s.add("Errors in the worker logs (a task that raises leaves its run `queued`: nothing "
              "retries it):")
        s.table(["count", "error"], [[n, f"`{e}`"] for e, n in errors.most_common(6)])
    s.add("Steps committed per second, runs in flight and runs being advanced "
          "(steady-state window shaded):")
    s.add(svg_series({"steps/s": [(x, p) for x, p, _, _ in samples],
                      "runs in flight": [(x, f) for x, _, f, _ in samples],
                      "runs being advanced": [(x, a) for x, _, _, a in samples]},
                     "seconds since the first step", "", band=band))
    text = [f"{x:6.1f}s {p:4d} steps/s {f:5d} in flight {a:4d} active" for x, p, f, a in
            samples[:: max(1, len(samples) // 25)]]
    s.add("```text\n" + "\n".join(text) + "\n```")
