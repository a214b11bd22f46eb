"""Anchor: a LangGraph loop with the Postgres checkpointer, on the bench's Postgres.

LangGraph (the ``bench`` extra) with ``langgraph-checkpoint-postgres``'s ``PostgresSaver``
saves a checkpoint after every super-step; ``durability="sync"`` waits for it before the
next step, as AgentDesk's checkpoint does. The graph is one node that loops on itself
``STEPS`` times, with two states:

- *constant*: ``{"count": int}`` — what a checkpoint costs when the state does not grow;
- *growing transcript*: ``count`` plus ``transcript``, a list that every step appends a
  message of ``MESSAGE_CHARS`` characters to (through the ``operator.add`` reducer), as an
  agent's conversation grows. The text is seeded pseudo-words, about as compressible as
  prose, so Postgres's TOAST compression is neither flattered nor defeated.

A step's time is the wall time from one entry into the node to the next: the node itself
(nothing), LangGraph's bookkeeping and the checkpoint's commit. Bytes per step: growth of
``pg_database_size`` over all the runs of a kind ÷ their steps — each kind has a fresh
database of its own on the bench's server (``tests.stack.fresh_postgres``), the runs of
the two kinds alternate, and nothing else writes there.
"""

from __future__ import annotations

import operator
import os
import random
import time
from importlib import metadata
from typing import Annotated, Any, TypedDict

from tests.stack import fresh_postgres, production_mode

from . import deploy
from .report import Section, percentile

section = Section("Anchor: LangGraph with the Postgres checkpointer")
TARGETS: dict = {}  # an anchor: the targets are the ratios that use it
RUNS = 20  # per kind
WARMUP_RUNS = 2
STEPS = 50
MESSAGE_CHARS = 1000
KINDS = ("constant", "growing")
PACKAGES = ("langgraph", "langgraph-checkpoint", "langgraph-checkpoint-postgres")


class ConstantState(TypedDict):
    count: int


class GrowingState(TypedDict):
    count: int
    transcript: Annotated[list, operator.add]


_WORDS = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz",
                                           k=2 + i % 8)) for i in range(2000)]


def message(i: int) -> dict[str, str]:
    rng = random.Random(i)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < MESSAGE_CHARS:
        words.append(rng.choice(_WORDS))
    return {"role": "assistant" if i % 2 else "tool", "content": " ".join(words)[:MESSAGE_CHARS]}


def graph(kind: str, marks: list[float]) -> Any:
    from langgraph.graph import END, START, StateGraph

    def step(state: dict[str, Any]) -> dict[str, Any]:
        marks.append(time.perf_counter())
        out: dict[str, Any] = {"count": state["count"] + 1}
        if kind == "growing":
            out["transcript"] = [message(state["count"])]
        return out

    builder = StateGraph(ConstantState if kind == "constant" else GrowingState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["count"] >= STEPS else "step")
    return builder


def _size(conn) -> int:
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def run() -> dict[str, float]:
    if not production_mode():
        section.add("Not measured on the embedded default: the anchor is LangGraph's "
                    "Postgres checkpointer (set `DATABASE_URL` and `REDIS_URL`).")
        return {}
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    urls = {kind: fresh_postgres(os.environ["DATABASE_URL"], f"agentdesk_bench_anchor_lg_{kind}")
            .replace("postgres://", "postgresql://", 1) for kind in KINDS}
    step_ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
    run_ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
    growth: dict[str, int] = {}
    try:
        with PostgresSaver.from_conn_string(urls["constant"]) as const_saver, \
                PostgresSaver.from_conn_string(urls["growing"]) as grow_saver:
            savers = {"constant": const_saver, "growing": grow_saver}
            marks: list[float] = []
            graphs = {}
            for kind, saver in savers.items():
                saver.setup()
                graphs[kind] = graph(kind, marks).compile(checkpointer=saver)
            sizers = {kind: psycopg.connect(url, autocommit=True) for kind, url in urls.items()}
            before: dict[str, int] = {}
            for i in range(WARMUP_RUNS + RUNS):
                if i == WARMUP_RUNS:
                    before = {kind: _size(conn) for kind, conn in sizers.items()}
                for kind in KINDS:
                    marks.clear()
                    state: dict[str, Any] = {"count": 0}
                    if kind == "growing":
                        state["transcript"] = []
                    started = time.perf_counter()
                    graphs[kind].invoke(state, {"configurable": {"thread_id": f"{kind}-{i}"},
                                                "recursion_limit": STEPS * 4},
                                        durability="sync")
                    if i >= WARMUP_RUNS:
                        run_ms[kind].append((time.perf_counter() - started) * 1000 / STEPS)
                        step_ms[kind] += [(b - a) * 1000 for a, b in zip(marks, marks[1:],
                                                                          strict=False)]
            growth = {kind: _size(conn) - before[kind] for kind, conn in sizers.items()}
            tables = {kind: _tables(conn) for kind, conn in sizers.items()}
            for conn in sizers.values():
                conn.close()
    finally:
        for url in urls.values():
            deploy.tidy_database(url)
    steps = RUNS * STEPS
    metrics = {
        "anchor_langgraph_step_p50_ms": round(percentile(step_ms["constant"], 50), 3),
        "anchor_langgraph_step_p95_ms": round(percentile(step_ms["constant"], 95), 3),
        "anchor_langgraph_step_growing_p50_ms": round(percentile(step_ms["growing"], 50), 3),
        "anchor_langgraph_bytes_per_step": round(growth["constant"] / steps, 1),
        "anchor_langgraph_bytes_per_step_growing": round(growth["growing"] / steps, 1),
    }
    _write_section(metrics, step_ms, run_ms, tables)
    return metrics


def _tables(conn) -> dict[str, int]:
    rows = conn.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                        "WHERE relkind = 'r' AND relname LIKE 'checkpoint%' ORDER BY relname")
    return dict(rows.fetchall())


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _write_section(metrics, step_ms, run_ms, tables) -> None:
    s = section
    s.lines.clear()
    s.add("**Versions:** " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ". "
          f"**Size:** {RUNS} runs of {STEPS} steps per state after {WARMUP_RUNS} warm-up "
          f"runs each, the two states alternating; growing transcript: "
          f"{MESSAGE_CHARS:,} characters appended per step. **How:** "
          + (__doc__ or "").split("\n\n")[1].replace("\n", " "))
    s.table(["state", "step p50 ms", "step p95 ms", "per step, run start and end included "
             "(p50 of runs)", "bytes stored per step"], [
        ["constant", percentile(step_ms["constant"], 50), percentile(step_ms["constant"], 95),
         percentile(run_ms["constant"], 50), metrics["anchor_langgraph_bytes_per_step"]],
        ["growing transcript", percentile(step_ms["growing"], 50),
         percentile(step_ms["growing"], 95), percentile(run_ms["growing"], 50),
         metrics["anchor_langgraph_bytes_per_step_growing"]],
    ])
    s.add("Checkpointer tables at the end (bytes, indexes and TOAST included): " + "; ".join(
        f"{kind}: " + ", ".join(f"`{t}` {n:,}" for t, n in sizes.items())
        for kind, sizes in tables.items()) + ". With a growing transcript every checkpoint "
        "stores the whole list again (a new blob of the channel per version), so the bytes "
        "per step grow with the run's length.")
