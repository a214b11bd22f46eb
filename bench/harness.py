"""Running benchmarks in processes of their own and writing ``bench/results/latest.*``.

Django is configured once per process from environment variables, and each benchmark
wants its own fresh database (and, for load benchmarks, its own worker processes), so
``python -m bench`` starts one child process per benchmark and merges what they report.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import ratios
from .report import Target, fmt

ROOT = Path(__file__).resolve().parents[1]
# ``BENCH_RESULTS_DIR`` writes elsewhere (trying a benchmark without touching the results).
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).parent / "results")
# Order: the quick in-process ones first, the load benchmarks (worker processes) last.
BENCHMARKS = [
    "overhead",
    "storage",
    "anchors_langgraph",
    "retrieval",
    "tiering",
    "budget",
    "api_submit",
    "throughput",
    "console_latency",
    "live_latency",
]
CHILD_TIMEOUT_S = 420


def targets_of(name: str, metrics: dict[str, float]) -> dict[str, Target]:
    module = importlib.import_module(f"bench.{name}")
    if hasattr(module, "targets"):
        return module.targets(metrics)
    return dict(module.TARGETS)


def child(name: str, out: Path) -> None:
    """Run one benchmark in this process and write its metrics and section to ``out``."""
    module = importlib.import_module(f"bench.{name}")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    metrics = module.run()
    seconds = time.monotonic() - started
    section = module.section.render() + (
        f"\n_Wall time of this benchmark: {seconds:.0f} s. Load average (1 min) before "
        f"{load_before:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores — "
        "other work on the machine slows every timing here._\n")
    out.write_text(json.dumps({"metrics": metrics, "section": section, "seconds": seconds}))


def run_isolated(name: str) -> dict[str, Any]:
    """Run benchmark ``name`` in a child process; its output goes to a log file."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        out, log = Path(tmp) / "result.json", Path(tmp) / "child.log"
        # the app logs as in production (INFO, JSON, a line per step) — to this file
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        with log.open("w") as fh:
            proc = subprocess.run(
                [sys.executable, "-m", "bench", "--child", name, "--out", str(out)],
                cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                timeout=CHILD_TIMEOUT_S, check=False,
            )
        if proc.returncode != 0 or not out.exists():
            tail = log.read_text()[-4000:]
            raise RuntimeError(f"benchmark {name} failed (exit {proc.returncode}):\n{tail}")
        result = json.loads(out.read_text())
        result["seconds"] = time.monotonic() - started
        return result


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "CPU": f"{cpu} — {os.cpu_count()} cores available",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["RAM"] = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        pass
    info["Load average (1, 5, 15 min) at the end"] = ", ".join(
        f"{x:.1f}" for x in os.getloadavg())
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        try:
            import psycopg

            with psycopg.connect(os.environ["DATABASE_URL"].replace("/agentdesk_dev", "/postgres"),
                                 connect_timeout=3) as conn:
                info["Postgres"] = conn.execute("SHOW server_version").fetchone()[0]
                info["Postgres max_connections"] = conn.execute(
                    "SHOW max_connections").fetchone()[0]
                info["Postgres fsync / synchronous_commit"] = " / ".join(
                    conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("fsync", "synchronous_commit"))
        except Exception as exc:  # the report still says what it could not read
            info["Postgres"] = f"unknown ({exc.__class__.__name__})"
    if os.environ.get("REDIS_URL"):
        try:
            import redis

            info["Redis"] = redis.Redis.from_url(os.environ["REDIS_URL"]).info()["redis_version"]
        except Exception as exc:
            info["Redis"] = f"unknown ({exc.__class__.__name__})"
    return info


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, text=True,
                               capture_output=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


_SECTION_RE = re.compile(r"<!-- bench:(?P<name>\w+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->",
                         re.DOTALL)


def write_results(results: dict[str, dict[str, Any]], total_s: float) -> None:
    """Merge into ``latest.json``/``latest.md``: a full run replaces them, a partial run
    replaces only the metrics and sections of the benchmarks it ran."""
    from .deploy import mode_label

    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / "latest.json", RESULTS / "latest.md"
    old = ratios.before(ROOT, json_path)
    full = set(results) == set(BENCHMARKS)
    metrics: dict[str, float] = {}
    sections: dict[str, str] = {}
    if not full and json_path.exists():
        metrics = json.loads(json_path.read_text())
    if not full and md_path.exists():
        sections = {m["name"]: m["body"] for m in _SECTION_RE.finditer(md_path.read_text())}
    for name, result in results.items():
        metrics.update(result["metrics"])
        sections[name] = result["section"]
    metrics.update(ratios.derived(metrics))
    json_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")

    rows = []
    for name in BENCHMARKS:
        for metric, target in targets_of(name, metrics).items():
            if metric in metrics:
                verdict = "met" if target.met(metrics[metric]) else "**missed**"
                rows.append(f"| `{metric}` | {fmt(metrics[metric])} | {target} | {verdict} | "
                            f"[{name}](#{name}) |")
    ran = ", ".join(f"{n} ({r['seconds']:.0f} s)" for n, r in results.items())
    lines = [
        "# AgentDesk benchmarks",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `make bench` "
        f"(`python -m bench`) at commit {git_commit()}.",
        "",
        f"**Mode:** {mode_label()}. "
        "`DATABASE_URL` and `REDIS_URL` set → Postgres + Redis, real Celery worker processes; "
        "unset → the embedded default. Every benchmark uses a fresh database.",
        "",
        "**Machine:** " + "; ".join(f"{k}: {v}" for k, v in machine().items()) + ".",
        "",
        f"**This invocation ran:** {ran}; {total_s:.0f} s in all."
        + ("" if full else " Other sections are from an earlier run."),
        "",
        *ratios.markdown(metrics, old),
        "## Summary: every target",
        "",
        "| metric | value | target | | benchmark |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "All metrics are in `bench/results/latest.json` (flat: name → number).",
        "",
    ]
    for name in BENCHMARKS:
        if name in sections:
            lines += [f'<a id="{name}"></a>', f"<!-- bench:{name} -->", sections[name].rstrip(),
                      f"<!-- /bench:{name} -->", ""]
    md_path.write_text("\n".join(lines))
