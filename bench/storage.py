"""Database growth per step.

A fresh database (migrated, demo data seeded, one warm-up run done so the agent's knowledge
package is indexed: that is the agent's, written once, not the runs') is measured, runs of
the evaluation mix are driven to their end (or escalation) with ``runs.execution.advance``,
and the database is measured again. Postgres: ``pg_database_size`` — all tables, indexes
and TOAST, including the row versions each checkpoint UPDATE leaves behind until autovacuum
reclaims them.
SQLite: the database file plus its WAL after a ``wal_checkpoint(TRUNCATE)``.

Then ``bench.storage_growth``: scripted runs of ~5 and of ~50 steps on the same database,
each phase on compacted tables — does a step cost more bytes in a longer run?
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import deploy, storage_growth, workload
from .report import Section, Target, fmt

section = Section("Storage per step")
TARGETS = {
    "storage_bytes_per_step": Target("<=", 2048, "bytes"),
    "storage_growth_50_vs_5": Target("<=", 1.2, "(bytes/step of 50-step runs ÷ 5-step)"),
}
RUNS = 250
THREADS = 4
TABLES = ["runs_run", "runs_step", "runs_toolcall", "runs_escalation", "runs_auditevent",
          "runs_teamdailyspend", "runs_policysnapshotrecord"]


def _size(database_url: str) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT pg_database_size(current_database())")
            return int(cur.fetchone()[0])
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(database_url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _tables() -> dict[str, int]:
    from django.db import connection

    sizes = {}
    with connection.cursor() as cur:
        for table in TABLES:
            if connection.vendor == "postgresql":
                cur.execute("SELECT pg_total_relation_size(%s)", [table])
            else:
                cur.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = %s "
                            "OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = %s)",
                            [table, table])
            sizes[table] = int(cur.fetchone()[0])
    return sizes


def _compacted() -> dict[str, int]:
    """Table sizes after VACUUM FULL: the live data without dead row versions."""
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            for table in TABLES:
                cur.execute(f"VACUUM FULL {table}")
        else:
            cur.execute("VACUUM")
    return _tables()


def _drive_one(team, message: str) -> None:
    from django.db import connection

    try:
        workload.drive(workload.submit(team, message))
    finally:
        connection.close()


def run() -> dict[str, float]:
    env = deploy.in_process("storage", latency_scale=0.0)
    try:
        from runs.models import Run, Step

        team = workload.make_team("bench-storage")
        tasks = workload.timing_tasks()
        _drive_one(team, tasks[0]["message"])  # the warm-up run: indexes the knowledge
        warm_steps, warm_runs = Step.objects.count(), Run.objects.count()
        tables_before = _tables()
        before = _size(env.database_url)
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda i: _drive_one(team, tasks[i % len(tasks)]["message"]),
                          range(RUNS)))
        after = _size(env.database_url)
        tables_after = _tables()
        steps = Step.objects.count() - warm_steps
        runs = Run.objects.count() - warm_runs
        state_bytes = _mean_state_bytes()
        fixed = _per_run_parts()
        compacted = _compacted()
        short, long = storage_growth.measure(lambda: _size(env.database_url), _tables,
                                             _compacted)
    finally:
        env.close()
    metrics = {
        "storage_bytes_per_step": round((after - before) / steps, 1),
        "storage_steps": steps,
        "storage_bytes_per_step_5": round(short.bytes_per_step, 1),
        "storage_bytes_per_step_50": round(long.bytes_per_step, 1),
        "storage_growth_50_vs_5": round(long.bytes_per_step / short.bytes_per_step, 3),
    }
    _write_section(metrics, before, after, steps, runs, tables_before, tables_after, compacted,
                   state_bytes, fixed)
    _write_growth(metrics, short, long)
    return metrics


def _per_run_parts() -> dict[str, float]:
    """Mean stored bytes of what every run writes once, whatever its length: its input (on
    the run row; its policy snapshot is a shared row, ``PolicySnapshotRecord``) and its
    retrieval step's transcript (the system prompt and the passages, once)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cur:
        cur.execute("SELECT AVG(pg_column_size(input)) FROM runs_run")
        (task_input,) = cur.fetchone()
        cur.execute("SELECT AVG(pg_column_size(transcript)) FROM runs_step "
                    "WHERE kind = 'retrieval'")
        (retrieval,) = cur.fetchone()
    return {"input": float(task_input or 0), "retrieval transcript": float(retrieval or 0)}


def _mean_state_bytes() -> float:
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT AVG(pg_column_size(state)), AVG(octet_length(state::text)) "
                        "FROM runs_run")
        else:
            cur.execute("SELECT AVG(length(state)), AVG(length(state)) FROM runs_run")
        stored, text = cur.fetchone()
    return float(stored or 0), float(text or 0)


def _write_section(metrics, before, after, steps, runs, tables_before, tables_after, compacted,
                   state_bytes, fixed) -> None:
    s = section
    s.lines.clear()
    s.add(f"**Mode:** {deploy.mode_label()}. **Size:** {runs} runs, {steps} steps "
          "(evaluation-set messages; answers, refunds, approvals, questions, unknown orders). "
          "**How:** " + (__doc__ or "").split("\n\n")[1].replace("\n", " "))
    why = {}
    if not TARGETS["storage_growth_50_vs_5"].met(metrics["storage_growth_50_vs_5"]):
        why["storage_growth_50_vs_5"] = (
            "a step's bytes grow with the run's length — see below")
    if metrics["storage_bytes_per_step"] > TARGETS["storage_bytes_per_step"].value:
        grow = {t: tables_after[t] - tables_before[t] for t in TABLES}
        top = max(grow, key=grow.get)
        once = sum(fixed.values())
        why["storage_bytes_per_step"] = (
            f"{top} grew most ({fmt(grow[top] / steps)} B/step). What every run writes once "
            f"({fmt(once)} B stored: " + ", ".join(f"{k} {fmt(v)}" for k, v in fixed.items())
            + f") is spread over {steps / max(runs, 1):.1f} steps here; runs of ~50 steps "
            f"store {fmt(metrics['storage_bytes_per_step_50'])} B/step")
    s.verdicts(metrics, TARGETS, why)
    s.table(["", "bytes"], [["database before", before], ["database after", after],
                            ["growth", after - before], ["per step", (after - before) / steps]])
    rows = []
    for t in TABLES:
        grew = tables_after[t] - tables_before[t]
        rows.append([t, grew, grew / steps, compacted[t] / steps])
    s.add("By table (indexes and TOAST included):")
    s.table(["table", "growth bytes", "bytes / step", "bytes / step after VACUUM FULL"], rows)
    s.add(f"Mean checkpoint (`Run.state`) at the end of a run: {fmt(state_bytes[1])} bytes of "
          f"JSON, {fmt(state_bytes[0])} bytes as stored: the transcript is not in it (the "
          "steps carry it, each the part its step added), so it does not grow with the run. "
          "Each checkpoint still UPDATEs the run row; until pruning or (auto)vacuum reclaims "
          "them, the old versions stay behind: the compacted column is the live data alone.")


def _write_growth(metrics, short, long) -> None:
    s = section
    s.add("**Growth with the run's length** (`bench/storage_growth.py`): "
          + (storage_growth.__doc__ or "").split("\n\n")[1].replace("\n", " "))
    rows = []
    for label, phase in (("~5 steps", short), ("~50 steps", long)):
        top = max(phase.tables, key=phase.tables.get)
        rows.append([label, phase.runs, phase.steps, f"{phase.steps / phase.runs:.1f}",
                     phase.state_bytes, phase.grew, phase.bytes_per_step,
                     f"{top} ({fmt(phase.tables[top] / phase.steps)} B/step)"])
    s.table(["runs of", "runs", "steps", "steps per run", "final state JSON bytes (mean)",
             "database growth bytes",
             "bytes per step", "grew most"], rows)
    s.add(f"`storage_growth_50_vs_5` = {fmt(metrics['storage_bytes_per_step_50'])} ÷ "
          f"{fmt(metrics['storage_bytes_per_step_5'])} = "
          f"**{metrics['storage_growth_50_vs_5']:.2f}** (target "
          f"{TARGETS['storage_growth_50_vs_5']}).")
