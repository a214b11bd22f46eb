"""The performance targets of issue 16: ratios to anchors measured in the same run.

Absolute times don't travel between machines, so each target is a ratio to an anchor
measured by the same ``make bench``, on the same Postgres and Redis: DBOS and the commit
floor (``bench.overhead``), LangGraph's Postgres checkpointer (``bench.anchors_langgraph``),
a minimal Django view behind the API's server (``bench.api_submit``), the 10-escalation
inbox (``bench.console_latency``), the ideal rate (``bench.throughput``). The two live
latencies stay absolute (on the machine the report states).

Each ratio is computed in the benchmark that measures both sides (interleaved there); this
module only puts them side by side in ``latest.md``, with the anchors and their versions,
and "before → after" against the results committed at ``HEAD``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .report import Target, fmt


@dataclass(frozen=True)
class Ratio:
    key: str  # the flat key in latest.json the target applies to
    what: str
    value: str  # the measured side
    anchor: str | None  # what it is divided by (None: an absolute target)
    target: Target
    benchmark: str


RATIOS = [
    Ratio("step_overhead_vs_dbos", "per-step cost: AgentDesk step p50 ÷ DBOS no-op step p50",
          "step_overhead_p50_ms", "anchor_dbos_step_p50_ms", Target("<=", 1.0), "overhead"),
    Ratio("storage_growth_50_vs_5", "storage growth: bytes/step of ~50-step runs ÷ ~5-step runs",
          "storage_bytes_per_step_50", "storage_bytes_per_step_5", Target("<=", 1.2),
          "storage"),
    Ratio("storage_bytes_per_step", "storage per step (evaluation mix); anchor: LangGraph, "
          "constant state", "storage_bytes_per_step", "anchor_langgraph_bytes_per_step",
          Target("<=", 2048, "bytes"), "storage"),
    Ratio("throughput_efficiency", "throughput: steps/s ÷ ideal (in flight ÷ 500 ms)",
          "throughput_steps_per_s", "throughput_ideal_steps_per_s", Target(">=", 0.8),
          "throughput"),
    Ratio("api_submit_vs_floor", "API: submits/s ÷ minimal view's requests/s (same server)",
          "api_submit_rps", "anchor_view_rps", Target(">=", 0.5), "api_submit"),
    Ratio("api_submit_p99_ms", "API: submit p99 at that load", "api_submit_p99_ms", None,
          Target("<=", 50.0, "ms"), "api_submit"),
    Ratio("inbox_scale_ratio", "inbox: p95 with 10,000 open ÷ with 10 open",
          "inbox_10000_p95_ms", "inbox_10_p95_ms", Target("<=", 1.5), "console_latency"),
    Ratio("inbox_query_growth", "inbox: SQL queries with 10,000 open − with 10",
          "inbox_10000_queries", "inbox_10_queries", Target("<=", 0, "queries"),
          "console_latency"),
    Ratio("escalation_latency_p95_ms", "escalation committed → operator's websocket, p95",
          "escalation_latency_p95_ms", None, Target("<=", 100.0, "ms"), "live_latency"),
    Ratio("decision_to_resume_p95_ms", "decision POST → the run's next step, p95",
          "decision_to_resume_p95_ms", None, Target("<=", 200.0, "ms"), "live_latency"),
]

ANCHORS = [  # key, what, packages whose versions it depends on
    ("anchor_commit_p50_ms", "commit floor: BEGIN; INSERT; COMMIT (psycopg), p50 ms",
     ["psycopg"]),
    ("anchor_commit_autocommit_p50_ms", "one INSERT in autocommit (one round trip), p50 ms",
     ["psycopg"]),
    ("anchor_dbos_step_p50_ms", "DBOS workflow, no-op step, p50 ms", ["dbos"]),
    ("anchor_dbos_workflow_ms_per_step", "DBOS, per step with workflow start/end, ms",
     ["dbos"]),
    ("anchor_dbos_bytes_per_step", "DBOS, system database bytes per step", ["dbos"]),
    ("anchor_langgraph_step_p50_ms", "LangGraph + PostgresSaver (sync), constant state, "
     "step p50 ms", ["langgraph", "langgraph-checkpoint-postgres"]),
    ("anchor_langgraph_step_growing_p50_ms", "LangGraph, growing transcript, step p50 ms",
     ["langgraph", "langgraph-checkpoint-postgres"]),
    ("anchor_langgraph_bytes_per_step", "LangGraph, constant state, bytes per step",
     ["langgraph", "langgraph-checkpoint-postgres"]),
    ("anchor_langgraph_bytes_per_step_growing", "LangGraph, growing transcript, bytes per "
     "step", ["langgraph", "langgraph-checkpoint-postgres"]),
    ("anchor_view_rps", "minimal Django view behind the API's server command, requests/s",
     ["Django", "uvicorn"]),
    ("throughput_ideal_steps_per_s", "ideal throughput: runs in flight ÷ 500 ms, steps/s", []),
    ("inbox_10_p95_ms", "inbox with 10 open escalations, p95 ms", ["Django"]),
]
VERSIONS = ["dbos", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-postgres",
            "Django", "uvicorn", "psycopg", "django-ninja", "celery", "channels"]


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def derived(metrics: dict[str, float]) -> dict[str, float]:
    """Ratios whose two sides come from different benchmarks of this run."""
    out = {}
    if metrics.get("anchor_langgraph_bytes_per_step") and "storage_bytes_per_step" in metrics:
        out["storage_bytes_per_step_vs_langgraph"] = round(
            metrics["storage_bytes_per_step"] / metrics["anchor_langgraph_bytes_per_step"], 3)
    if metrics.get("anchor_langgraph_bytes_per_step_growing") and \
            "storage_bytes_per_step_50" in metrics:
        out["storage_bytes_per_step_50_vs_langgraph_growing"] = round(
            metrics["storage_bytes_per_step_50"]
            / metrics["anchor_langgraph_bytes_per_step_growing"], 3)
    return out


def before(root: Path, current: Path) -> dict[str, float]:
    """The results committed at HEAD (else the file about to be replaced)."""
    try:
        text = subprocess.run(["git", "show", "HEAD:bench/results/latest.json"], cwd=root,
                              capture_output=True, text=True, check=True).stdout
        return json.loads(text)
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    try:
        return json.loads(current.read_text())
    except (OSError, ValueError):
        return {}


def _ratio_text(r: Ratio, metrics: dict[str, float]) -> str:
    if r.anchor is None:
        return "—"
    if r.key == "inbox_query_growth":
        return f"{fmt(metrics[r.key])} (difference)"
    if r.key == r.value:  # an absolute target; the ratio to its anchor is context
        if not metrics.get(r.anchor):
            return "—"
        return f"{fmt(metrics[r.value] / metrics[r.anchor])} (context)"
    return f"**{fmt(metrics[r.key])}**"


def _before_after(r: Ratio, old: dict[str, float], metrics: dict[str, float]) -> str:
    if r.key in old:
        return f"{fmt(old[r.key])} → {fmt(metrics[r.key])}"
    if r.value in old and r.value in metrics:
        return f"`{r.value}` {fmt(old[r.value])} → {fmt(metrics[r.value])}"
    return "— (new)"


def markdown(metrics: dict[str, float], old: dict[str, float]) -> list[str]:
    """The targets table, then the anchors and versions."""
    lines = [
        "## Targets: ratios to anchors measured in this run",
        "",
        "Each ratio's two sides were measured by the same benchmark in the same run, "
        "interleaved where they are times (see each section). *Before* is "
        "`bench/results/latest.json` as committed at `HEAD` (measured before the anchors "
        "existed, so most ratios have no before; the measured side's absolute value is "
        "shown instead).",
        "",
        "| target | value | anchor | ratio | target | | before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in RATIOS:
        if r.key not in metrics:
            lines.append(f"| {r.what} | not measured | | | {r.target} | | "
                         f"[{r.benchmark}](#{r.benchmark}) |")
            continue
        value = f"`{r.value}` {fmt(metrics[r.value])}" if r.value in metrics else "—"
        anchor = (f"`{r.anchor}` {fmt(metrics[r.anchor])}"
                  if r.anchor and r.anchor in metrics else "—")
        verdict = "met" if r.target.met(metrics[r.key]) else "**missed**"
        lines.append(f"| [{r.what}](#{r.benchmark}) (`{r.key}`) | {value} | {anchor} | "
                     f"{_ratio_text(r, metrics)} | {r.target} | {verdict} | "
                     f"{_before_after(r, old, metrics)} |")
    extra = derived(metrics)
    if extra:
        lines += ["", "For context: " + "; ".join(f"`{k}` = {fmt(v)}" for k, v in
                                                  extra.items()) + "."]
    lines += [
        "",
        "### Anchors",
        "",
        "| anchor | value | what |",
        "|---|---|---|",
    ]
    for key, what, _packages in ANCHORS:
        if key in metrics:
            lines.append(f"| `{key}` | {fmt(metrics[key])} | {what} |")
    lines += ["", "**Versions:** " + ", ".join(f"{k} {v}" for k, v in versions().items())
              + ".", ""]
    return lines
