"""Engine time per step, model latency excluded.

One process, Django on a fresh database, the simulator (its own process) at zero latency.
Runs of the evaluation mix (answers, refunds, approvals, questions, unknown orders; not the
fault-injected tools, whose retries sleep) are submitted and advanced one at a time with
``runs.execution.advance`` — what the Celery task calls.

A step's time is the wall time from the end of the previous step's commit (or the start of
``advance``) to the end of this step's commit, minus the time spent inside the model call
(``ModelClient.complete``: the openai client, HTTP and the simulator). So it includes:
taking the lease and loading the run (first step of a slice), building the prompt, bounds,
the response-cache lookup and store, the team-budget reservation, parsing the reply,
running the tool, the checkpoint (JSON of the run state, the Run UPDATE, the Step INSERT
with its transcript, the calls' settlement and the next call's hold in one transaction), the
check whether anyone watches the run (nobody does: no fragment is rendered), and the
structured log line.

The anchor (issue 16): DBOS workflows of no-op steps and the commit floor (one INSERT +
COMMIT), on the same Postgres server, in this process, interleaved with the runs — a DBOS
workflow and a batch of floor commits after every block of runs — so that a busy machine
weighs on both sides alike. ``step_overhead_vs_dbos`` = AgentDesk's step p50 ÷ DBOS's.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from tests.stack import production_mode

from . import anchors_dbos, deploy, workload
from .anchors_floor import CommitFloor
from .report import Section, Target, percentile, svg_histogram, text_histogram

section = Section("Step overhead")
TARGETS = {"step_overhead_vs_dbos": Target("<=", 1.0, "(AgentDesk p50 ÷ DBOS p50)")}
RUNS = 250
WARMUP_RUNS = 20
# Then the same mix again with the two per-step features a DBOS no-op step has no part of:
# the response cache off (a policy setting) and the tool breakers in this process's memory
# instead of Redis — what those cost, beside the same anchor.
BARE_RUNS = 150
# After every BLOCK runs: one DBOS workflow of DBOS_STEPS no-op steps, FLOOR_COMMITS commits.
BLOCK = 10
DBOS_STEPS = 20
FLOOR_COMMITS = 30


class Probe:
    """Wall-time accounting by wrapping the app's seams (this process only, one thread)."""

    def __init__(self) -> None:
        self.mark = time.perf_counter()
        self.mark_cpu = time.thread_time()
        self.model_cpu = 0.0
        self.spent: dict[str, float] = defaultdict(float)
        self.samples: list[dict[str, Any]] = []
        self.recording = False
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, phase: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:  # the seam moved: that part is counted as engine time
            return
        probe = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, started_cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                probe.spent[phase] += time.perf_counter() - started
                if phase == "model":
                    probe.model_cpu += time.thread_time() - started_cpu

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def install(self) -> None:
        from agentdesk.runtime import gateway, loop
        from runs import adapters, budgets, events, fragments, response_cache

        self.wrap(gateway.OpenAIGateway, "complete", "model")
        self.wrap(fragments, "run_progress", "render")
        self.wrap(fragments, "escalation_opened", "render")
        self.wrap(events, "publish", "publish")
        self.wrap(budgets.DjangoTeamBudget, "reserve", "budget")
        self.wrap(budgets.DjangoTeamBudget, "settle", "budget")
        self.wrap(response_cache.DjangoResponseCache, "get", "cache")
        self.wrap(response_cache.DjangoResponseCache, "set", "cache")
        self.wrap(loop, "execute_tool", "tool")
        commit = adapters.DjangoRunStore.commit
        probe = self

        def committed(store, state, step=None, escalation=None):
            started = time.perf_counter()
            try:
                return commit(store, state, step, escalation)
            finally:
                probe.spent["commit_total"] += time.perf_counter() - started
                probe.step_done(step)

        adapters.DjangoRunStore.commit = committed
        self._undo.append(lambda: setattr(adapters.DjangoRunStore, "commit", commit))

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()

    def start_slice(self) -> None:
        self.mark, self.mark_cpu = time.perf_counter(), time.thread_time()
        self.model_cpu = 0.0
        self.spent.clear()

    def step_done(self, step: Any) -> None:
        now, now_cpu = time.perf_counter(), time.thread_time()
        wall, cpu = now - self.mark, now_cpu - self.mark_cpu - self.model_cpu
        spent = dict(self.spent)
        self.mark, self.mark_cpu, self.model_cpu = now, now_cpu, 0.0
        self.spent.clear()
        if not self.recording or step is None:
            return
        model = spent.get("model", 0.0)
        render_publish = spent.get("render", 0.0) + spent.get("publish", 0.0)
        self.samples.append({
            "kind": step.kind.value,
            "ms": (wall - model) * 1000,
            "cpu_ms": cpu * 1000,
            "model_ms": model * 1000,
            "phases": {
                "render": spent.get("render", 0.0) * 1000,
                "publish": spent.get("publish", 0.0) * 1000,
                "budget": spent.get("budget", 0.0) * 1000,
                "cache": spent.get("cache", 0.0) * 1000,
                "tool": spent.get("tool", 0.0) * 1000,
                "commit": max(0.0, spent.get("commit_total", 0.0) - render_publish) * 1000,
            },
        })


def _drive(probe: Probe, run_id: int) -> None:
    from runs import execution

    for _ in range(50):
        probe.start_slice()
        if execution.advance(run_id) != execution.MORE_WORK:
            return


class Anchors:
    """The DBOS workflow and the commit floor on this benchmark's Postgres server (none on
    the embedded default: they anchor the production topology)."""

    def __init__(self, database_url: str) -> None:
        self.floor = self.dbos = None
        if production_mode():
            self.floor = CommitFloor(database_url)
            self.dbos = anchors_dbos.DbosAnchor(database_url)

    def sample(self, recording: bool) -> None:
        if self.dbos is None:
            return
        if not recording:  # warm-up: connections, DBOS's first workflow
            self.dbos.sample(DBOS_STEPS)
            self.floor.sample(FLOOR_COMMITS)
            self.dbos.step_ms.clear()
            self.dbos.workflow_ms_per_step.clear()
            self.floor.transaction_ms.clear()
            self.floor.autocommit_ms.clear()
            return
        self.dbos.sample(DBOS_STEPS)
        self.floor.sample(FLOOR_COMMITS)

    def metrics(self) -> dict[str, float]:
        if self.dbos is None:
            return {}
        return {
            "anchor_dbos_step_p50_ms": round(percentile(self.dbos.step_ms, 50), 3),
            "anchor_dbos_step_p95_ms": round(percentile(self.dbos.step_ms, 95), 3),
            "anchor_dbos_workflow_ms_per_step": round(
                percentile(self.dbos.workflow_ms_per_step, 50), 3),
            "anchor_dbos_bytes_per_step": round(self.dbos.bytes_per_step(), 1),
            "anchor_commit_p50_ms": round(percentile(self.floor.transaction_ms, 50), 3),
            "anchor_commit_p95_ms": round(percentile(self.floor.transaction_ms, 95), 3),
            "anchor_commit_autocommit_p50_ms": round(
                percentile(self.floor.autocommit_ms, 50), 3),
        }

    def close(self) -> None:
        if self.dbos is not None:
            self.dbos.close()
            self.floor.close()


def run() -> dict[str, float]:
    env = deploy.in_process("overhead", latency_scale=0.0)
    probe = Probe()
    anchors = None
    try:
        probe.install()
        team = workload.make_team("bench-overhead")
        tasks = workload.timing_tasks()
        anchors = Anchors(env.database_url)
        for i in range(WARMUP_RUNS + RUNS):
            probe.recording = i >= WARMUP_RUNS
            _drive(probe, workload.submit(team, tasks[i % len(tasks)]["message"]))
            if i % BLOCK == BLOCK - 1:
                anchors.sample(recording=probe.recording)
        samples, probe.samples = probe.samples, []
        with _without_cache_and_redis_breakers(team):
            for i in range(BARE_RUNS):
                _drive(probe, workload.submit(team, tasks[i % len(tasks)]["message"]))
                if i % BLOCK == BLOCK - 1:
                    anchors.sample(recording=True)
        anchor_metrics = anchors.metrics()
    finally:
        probe.uninstall()
        if anchors is not None:
            anchors.close()
        env.close()
    return _summarise(samples, anchor_metrics, bare=probe.samples)


@contextlib.contextmanager
def _without_cache_and_redis_breakers(team: Any) -> Iterator[None]:
    """The team's policy with no response cache, and this process's breakers in memory."""
    from agentdesk.runtime.breaker import InMemoryBreakerStore
    from runs import execution
    from runs.models import Agent

    policy = Agent.objects.get(team=team, slug=workload.AGENT).policy
    ttl, store = policy.cache_ttl_seconds, execution.breaker_store
    policy.cache_ttl_seconds = 0
    policy.save()
    memory = InMemoryBreakerStore()
    execution.breaker_store = lambda: memory
    try:
        yield
    finally:
        execution.breaker_store = store
        policy.cache_ttl_seconds = ttl
        policy.save()


def _summarise(samples: list[dict[str, Any]], anchors: dict[str, float],
               bare: list[dict[str, Any]]) -> dict[str, float]:
    times = [s["ms"] for s in samples]
    metrics = {
        "step_overhead_bare_p50_ms": round(percentile([s["ms"] for s in bare], 50), 3),
        "step_overhead_p50_ms": round(percentile(times, 50), 3),
        "step_overhead_p95_ms": round(percentile(times, 95), 3),
        "step_overhead_mean_ms": round(sum(times) / len(times), 3),
        "step_overhead_cpu_p50_ms": round(percentile([s["cpu_ms"] for s in samples], 50), 3),
        "step_overhead_steps": len(times),
        **anchors,
    }
    if anchors:
        metrics["step_overhead_vs_dbos"] = round(
            metrics["step_overhead_p50_ms"] / anchors["anchor_dbos_step_p50_ms"], 3)
        metrics["step_overhead_bare_vs_dbos"] = round(
            metrics["step_overhead_bare_p50_ms"] / anchors["anchor_dbos_step_p50_ms"], 3)
        metrics["step_overhead_vs_commit"] = round(
            metrics["step_overhead_p50_ms"] / anchors["anchor_commit_p50_ms"], 2)
    _write_section(metrics, samples, bare)
    return metrics


def _write_section(metrics: dict[str, float], samples: list[dict[str, Any]],
                   bare: list[dict[str, Any]]) -> None:
    s = section
    s.lines.clear()
    times = [x["ms"] for x in samples]
    s.add(f"**Mode:** {deploy.mode_label()}. **Size:** {RUNS} runs ({len(samples)} steps) "
          f"after {WARMUP_RUNS} warm-up runs, one at a time, evaluation-set messages. "
          "**How:** `runs.execution.advance` called directly on a fresh database, simulator "
          "in its own process at zero latency; each step = time between consecutive commits "
          "(the first from the start of `advance`) minus the time inside the model call. "
          "Included: lease and run load (the transcript read back from the step rows), "
          "prompt building, bounds, response cache, the team-budget reservation, reply "
          "parsing, tool execution, the checkpoint transaction (run state as JSON without "
          "the transcript, Run UPDATE, Step INSERT with the transcript the step added, the "
          "model calls' settlement, the next call's hold when the model is asked next, "
          "escalation row), the check whether anyone watches the "
          "run (nobody does here, so no live fragment is rendered: `runs.watchers`), the "
          "step's log line.")
    why = {}
    ratio = metrics.get("step_overhead_vs_dbos")
    if ratio is not None and not TARGETS["step_overhead_vs_dbos"].met(ratio):
        means = _phase_means(samples)
        top = sorted(means.items(), key=lambda kv: -kv[1])[:3]
        why["step_overhead_vs_dbos"] = "largest parts per step: " + ", ".join(
            f"{k} {v:.1f} ms" for k, v in top)
    s.verdicts(metrics, TARGETS, why)
    _anchor_table(metrics)
    cpu = [x["cpu_ms"] for x in samples]
    s.table(["", "p50 ms", "p95 ms", "p99 ms", "mean ms"], [
        ["all steps (wall clock: the metric)", percentile(times, 50), percentile(times, 95),
         percentile(times, 99), sum(times) / len(times)],
        ["CPU time of the engine thread", percentile(cpu, 50), percentile(cpu, 95),
         percentile(cpu, 99), sum(cpu) / len(cpu)],
    ])
    s.add("The CPU row counts only this thread's own work (not the database server's, not "
          "waiting for a core): it shows what the step costs on an idle machine, where the "
          "wall clock also includes waiting for the CPU when other work runs (load below).")
    by_kind: dict[str, list[float]] = defaultdict(list)
    for x in samples:
        by_kind[x["kind"]].append(x["ms"])
    bare_by_kind: dict[str, list[float]] = defaultdict(list)
    for x in bare:
        bare_by_kind[x["kind"]].append(x["ms"])
    s.add("By step kind (and, last column, the same kind without the response cache and with "
          "the tool breakers in memory: see below):")
    s.table(["kind", "steps", "p50 ms", "p95 ms", "mean ms", "p50 ms without them"],
            [[k, len(v), percentile(v, 50), percentile(v, 95), sum(v) / len(v),
              percentile(bare_by_kind[k], 50) if bare_by_kind.get(k) else ""]
             for k, v in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))])
    if "step_overhead_bare_vs_dbos" in metrics:
        s.add(f"**Without the two per-step features a no-op step has no part of** ({BARE_RUNS} "
              "more runs of the same mix after the measurement, the anchors still interleaved): "
              "the policy's response cache off (a model step then skips its Redis GET and "
              "SET) and the tool breakers in this process's memory instead of Redis (on "
              "Redis a healthy tool's breaker is asked once per quiet window, "
              "`TOOL_BREAKER_QUIET_SECONDS`, and its success sends nothing). Step p50 "
              f"{metrics['step_overhead_bare_p50_ms']:.2f} ms, "
              f"**{metrics['step_overhead_bare_vs_dbos']:.2f}** × DBOS's; with them "
              f"{metrics['step_overhead_p50_ms']:.2f} ms, "
              f"{metrics['step_overhead_vs_dbos']:.2f} ×. The target is the latter.")
    means = _phase_means(samples)
    total = sum(times) / len(times)
    rows = [[name, ms, f"{ms / total:.0%}"] for name, ms in means.items()]
    s.add("Where the time goes (mean per step; *engine and ORM* is the rest: lease, "
          "loading, prompt, parsing, bounds, ledger, log):")
    s.table(["part", "mean ms / step", "share"], rows)
    model = [x["model_ms"] for x in samples if x["kind"] == "model"]
    if model:
        s.add(f"Excluded model-call time (openai client + HTTP + simulator at zero latency): "
              f"p50 {percentile(model, 50):.2f} ms per model step.")
    s.add(svg_histogram(times, "ms per step", {
        "p50": metrics["step_overhead_p50_ms"], "p95": metrics["step_overhead_p95_ms"],
        **({"DBOS p50": metrics["anchor_dbos_step_p50_ms"]}
           if "anchor_dbos_step_p50_ms" in metrics else {})}))
    s.add(text_histogram(times, "ms"))


def _phase_means(samples: list[dict[str, Any]]) -> dict[str, float]:
    n = len(samples)
    labels = {
        "commit": "checkpoint transaction (state JSON, run UPDATE, step INSERT with its "
                  "transcript, the calls' settlement, the next call's hold)",
        "render": "live fragments (a watch check; rendered only when someone watches)",
        "publish": "publish to channel layer",
        "budget": "team budget reserve (none when the previous checkpoint held for the "
                  "call; the settle is in the checkpoint)",
        "cache": "response cache get + set",
        "tool": "tool execution",
    }
    means = {labels[k]: sum(x["phases"][k] for x in samples) / n for k in labels}
    total = sum(x["ms"] for x in samples) / n
    means["engine and ORM (rest)"] = max(0.0, total - sum(means.values()))
    return means


def _anchor_table(metrics: dict[str, float]) -> None:
    """AgentDesk's step beside the anchors measured in this process, interleaved."""
    s = section
    if "anchor_dbos_step_p50_ms" not in metrics:
        s.add("No anchors on the embedded default: DBOS and the commit floor are measured "
              "on Postgres (set `DATABASE_URL` and `REDIS_URL`).")
        return
    s.add(f"**Side by side** (same process, same Postgres server; after every {BLOCK} runs "
          f"one DBOS workflow of {DBOS_STEPS} no-op steps and {FLOOR_COMMITS} floor commits, "
          f"so the machine's load weighs on all three alike). DBOS {anchors_dbos.version()}; "
          "its system database is a fresh database of its own on the same server.")
    s.table(["", "p50 ms", "p95 ms", "AgentDesk's p50 ÷ this"], [
        ["AgentDesk step (model call excluded)", metrics["step_overhead_p50_ms"],
         metrics["step_overhead_p95_ms"], "1.00"],
        ["DBOS no-op step (the decorated call)", metrics["anchor_dbos_step_p50_ms"],
         metrics["anchor_dbos_step_p95_ms"], f"**{metrics['step_overhead_vs_dbos']:.2f}**"],
        ["DBOS per step, workflow start and end included (p50 of workflows)",
         metrics["anchor_dbos_workflow_ms_per_step"], "",
         f"{metrics['step_overhead_p50_ms'] / metrics['anchor_dbos_workflow_ms_per_step']:.2f}"],
        ["commit floor: BEGIN; INSERT; COMMIT (psycopg)", metrics["anchor_commit_p50_ms"],
         metrics["anchor_commit_p95_ms"], f"{metrics['step_overhead_vs_commit']:.1f}"],
        ["one INSERT in autocommit (one round trip)",
         metrics["anchor_commit_autocommit_p50_ms"], "", ""],
    ])
    s.add(f"DBOS stored {metrics['anchor_dbos_bytes_per_step']:,.0f} bytes per step in its "
          "system database (`pg_database_size` before and after; workflow rows included).")
