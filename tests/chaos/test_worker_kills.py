"""Chaos: SIGKILL Celery worker processes at random moments while hundreds of runs progress.

A real deployment (``tests.stack``: a fresh Postgres database, Redis as the broker, two
``celery worker`` processes, beat, the LLM simulator) gets a steady stream of runs while
its workers are killed with SIGKILL at random moments (each one 0.5–2.5 s after it is up
again: a kill while it boots would interrupt nothing) and started again. Then the survivors
finish (the reaper brings back runs whose worker died) and the database and the refunds
journal — the outside witness of the only side effect — are checked:

* no run is lost: each one is terminal, or waiting for a human with an open escalation;
* no side effect ran twice: one ``issue_refund`` ledger row per run at most, one journal
  line per succeeded ledger row, no idempotency key twice in the journal;
* each run's totals equal the sum of its steps, whose indexes are exactly 0..n-1.

The test drives the stack only from outside: ``manage.py shell`` subprocesses for
submitting runs and reaping, raw SQL against the stack's database for the checks.
``CHAOS_RUNS``, ``CHAOS_KILL_SECONDS`` and ``CHAOS_SEED`` change its size and replay it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.stack import PY, ROOT, Stack, production_mode

pytestmark = pytest.mark.chaos

RUNS = int(os.environ.get("CHAOS_RUNS", "200"))
KILL_SECONDS = float(os.environ.get("CHAOS_KILL_SECONDS", "40"))
SUBMIT_SECONDS = KILL_SECONDS * 0.6  # runs keep arriving while workers die
MIN_KILLS = 10
WORKERS = 2
LIFE_S = (0.5, 2.5)  # a worker dies this long after it is up (it boots in 3.5-5 s here)
DRAIN_SECONDS = 180.0
REAP_EVERY_S = 4.0  # beat reaps every 10 s; the drain should not wait for it
SCENARIOS = {  # order number → what the customer writes
    "1077": "Where is my order 1077?",  # an answer
    "1001": "I want a refund for order 1001",  # a refund below the approval amount
    "1042": "I want a refund for order 1042",  # a refund that needs approval
    "9999": "Where is my order 9999?",  # the order service fails
}
# Half the runs refund (the side effect under test). Failing lookups stay rare: two in a
# row open the order service's circuit breaker (5 failures, 3 attempts each), and then every
# lookup fails for its 30 s cool-down.
MIX = ["1001", "1077", "1001", "1042"] * 5
MIX[-1] = "9999"
# What may become of each, whatever the kills do. A lookup of a good order fails only when
# the breaker refused it ("circuit open"); a refund interrupted mid-call waits for a human.
EXPECTED = {
    "1077": {("succeeded", ""), ("waiting_human", "tool_failed")},
    "1001": {("succeeded", ""), ("waiting_human", "tool_failed"),
             ("waiting_human", "tool_outcome_unknown")},
    "1042": {("waiting_human", "approval_required"), ("waiting_human", "tool_failed")},
    # even a kill between the failed lookup's step and its escalation: the checkpoint
    # already says "tool_failed", so the resume escalates it
    "9999": {("waiting_human", "tool_failed")},
}
TERMINAL = {"succeeded", "failed", "aborted"}
TOTALS = ("tokens_in", "tokens_out", "tokens_cached", "tokens_reasoning", "cost_usd")

SUBMITTER = """
import json, os, time
from runs.breakers import reset_breakers
from runs.models import Team
from runs.services import submit_run
reset_breakers()  # a breaker another test left open must not fail our lookups
team = Team.objects.get(slug="demo")
messages = json.loads(os.environ["CHAOS_MESSAGES"])
pause = float(os.environ["CHAOS_SUBMIT_PAUSE"])
for text in messages:
    submit_run(team=team, agent_slug="support-refunds", task_input={"message": text},
               user_id=None)
    time.sleep(pause)
print("SUBMITTED", len(messages), flush=True)
"""

REAPER = """
import os, time
from runs.maintenance import reap_runs
while True:
    print("REAPED", reap_runs(), flush=True)
    time.sleep(float(os.environ["CHAOS_REAP_EVERY"]))
"""


def manage_shell(stack: Stack, code: str, name: str, **env: str) -> subprocess.Popen:
    """``manage.py shell -c code`` against the stack, its output in ``<workdir>/<name>.out``."""
    out = (stack.workdir / f"{name}.out").open("a")
    return subprocess.Popen(
        [PY, "manage.py", "shell", "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        env={**stack.env, "LOG_LEVEL": "WARNING", **env}, start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def active_runs(db) -> int:
    return db.execute(
        "SELECT count(*) FROM runs_run WHERE status IN ('queued', 'running')"
    ).fetchone()[0]


def boots(stack: Stack, worker: int) -> int:
    """How many times worker ``worker`` got as far as printing its banner (it is up)."""
    log = stack.workdir / f"worker{worker}.log"
    return log.read_text(errors="replace").count("[queues]") if log.exists() else 0


def kill_workers(
    stack: Stack, db, rng: random.Random, submitter: subprocess.Popen
) -> tuple[int, list[int]]:
    """For ``KILL_SECONDS``: SIGKILL each worker at a random moment 0.5–2.5 s after it is up,
    and start it again. Returns the kills and how many runs were leased at each one."""
    leased: list[int] = []
    incarnation = dict.fromkeys(range(WORKERS), 1)
    death: dict[int, float] = {}  # worker → when to kill it, once it is up
    deadline = time.monotonic() + KILL_SECONDS
    while time.monotonic() < deadline or (
        len(leased) < MIN_KILLS and time.monotonic() < deadline + 30
    ):
        time.sleep(0.1)
        if len(leased) >= MIN_KILLS and submitter.poll() is not None and not active_runs(db):
            break  # nothing left to interrupt
        now = time.monotonic()
        for i in range(WORKERS):
            if i not in death and boots(stack, i) >= incarnation[i]:
                death[i] = now + rng.uniform(*LIFE_S)
        due = [i for i, t in death.items() if now >= t]
        if not due:
            continue
        victim = rng.choice(due)
        leased.append(db.execute(
            "SELECT count(*) FROM runs_run WHERE status = 'running' AND lease_expires_at > now()"
        ).fetchone()[0])
        stack.kill(f"worker{victim}")
        stack.start_worker(victim)
        incarnation[victim] += 1
        del death[victim]
    return len(leased), leased


def drain(db) -> float:
    """Wait until no run is queued or running; the seconds it took."""
    started = time.monotonic()
    while active_runs(db):
        if time.monotonic() - started > DRAIN_SECONDS:
            rows = db.execute(
                "SELECT id, status, lease_owner, lease_expires_at, updated_at FROM runs_run "
                "WHERE status IN ('queued', 'running') ORDER BY id LIMIT 20"
            ).fetchall()
            raise AssertionError(f"runs still active after {DRAIN_SECONDS:.0f}s: {rows}")
        time.sleep(0.5)
    return time.monotonic() - started


def journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check(db, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    """Every invariant the chaos must not break; returns numbers for the summary."""
    runs = {
        row[0]: dict(zip(("status", "reason", "lease_owner", "step_count", "message", *TOTALS),
                         row[1:], strict=True))
        for row in db.execute(
            "SELECT id, status, reason, lease_owner, step_count, input->>'message', "
            f"{', '.join(TOTALS)} FROM runs_run ORDER BY id"
        )
    }
    assert len(runs) == RUNS, f"{len(runs)} runs in the database, {RUNS} submitted"

    # No run is lost: terminal, or waiting for a human who has an open escalation to decide.
    open_escalations = Counter(
        run_id for (run_id,) in db.execute("SELECT run_id FROM runs_escalation "
                                           "WHERE status = 'open'")
    )
    for run_id, run in runs.items():
        assert run["status"] in TERMINAL | {"waiting_human"}, f"run {run_id} is lost: {run}"
        assert run["lease_owner"] == "", f"run {run_id} still leased: {run}"
        want = 1 if run["status"] == "waiting_human" else 0
        assert open_escalations[run_id] == want, (
            f"run {run_id} ({run['status']}) has {open_escalations[run_id]} open escalations")

    # Totals equal the sum of the steps; the trace has no gap and no duplicate.
    steps: dict[int, list[tuple]] = defaultdict(list)
    for row in db.execute(f"SELECT run_id, index, {', '.join(TOTALS)} FROM runs_step "
                          "ORDER BY run_id, index"):
        steps[row[0]].append(row[1:])
    for run_id, run in runs.items():
        trace = steps[run_id]
        assert [s[0] for s in trace] == list(range(run["step_count"])), (
            f"run {run_id}: step indexes {[s[0] for s in trace]}, step_count "
            f"{run['step_count']}")
        for i, name in enumerate(TOTALS, start=1):
            total = sum((s[i] for s in trace), Decimal(0) if name == "cost_usd" else 0)
            assert run[name] == total, f"run {run_id}: {name} {run[name]} != steps' {total}"

    # No side effect twice: the ledger and the journal (the outside witness) agree.
    ledger: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for run_id, key, status in db.execute(
        "SELECT run_id, idempotency_key, status FROM runs_toolcall WHERE tool = 'issue_refund'"
    ):
        ledger[run_id].append((key, status))
    journal_keys = Counter(r["idempotency_key"] for r in refunds)
    twice = [key for key, n in journal_keys.items() if n > 1]
    assert not twice, f"refunds issued twice: {twice}"
    ledger_keys = {key: (run_id, status) for run_id, rows in ledger.items()
                   for key, status in rows}
    assert set(journal_keys) <= set(ledger_keys), (
        f"refunds without a ledger row: {set(journal_keys) - set(ledger_keys)}")
    for key, (run_id, status) in ledger_keys.items():
        if status == "succeeded":
            assert journal_keys[key] == 1, f"ledger says {key} succeeded; journal disagrees"
        elif status == "started":  # the worker died around the call: a human must look
            run = runs[run_id]
            assert (run["status"], run["reason"]) == ("waiting_human", "tool_outcome_unknown"), (
                f"run {run_id}: refund {key} outcome unknown but the run is {run}")
        else:
            assert journal_keys[key] == 0, f"ledger says {key} failed; journal disagrees"

    # Per scenario: what may happen to it, whatever the kills did.
    last_tool_error = dict(db.execute(
        "SELECT DISTINCT ON (run_id) run_id, error FROM runs_step WHERE kind = 'tool' "
        "ORDER BY run_id, index DESC"
    ).fetchall())
    outcomes: Counter[str] = Counter()
    for run_id, run in runs.items():
        order = next(o for o in SCENARIOS if o in run["message"])
        rows = ledger[run_id]
        outcomes[f"{order}:{run['status']}:{run['reason'] or '-'}"] += 1
        assert (run["status"], run["reason"]) in EXPECTED[order], f"run {run_id}: {run}"
        if run["reason"] == "tool_failed" and order != "9999":
            assert "circuit open" in last_tool_error.get(run_id, ""), (
                f"run {run_id}: lookup of a good order failed: {last_tool_error.get(run_id)}")
        assert len(rows) <= 1, f"run {run_id}: issue_refund called {len(rows)} times"
        if order != "1001":
            assert not rows, f"run {run_id} ({run['message']!r}) issued a refund: {rows}"
        elif run["status"] == "succeeded":
            assert [s for _, s in rows] == ["succeeded"], f"run {run_id}: {rows}"
            assert journal_keys[rows[0][0]] == 1
        elif run["reason"] != "tool_outcome_unknown":
            assert not rows, f"run {run_id} ({run['status']}) has a refund: {rows}"
    # No money is left held by the dead: every reservation went back. (A call is settled by
    # its step's commit, so a kill loses both; spent may still exceed the recorded costs by
    # the calls of a worker that lost its lease or crashed: their cost counts, no step does.)
    left = money(db)
    assert (left["reserved"], left["held"]) == (0, 0), f"reservations leaked: {left}"
    assert left["spent"] >= left["recorded"], left
    return {"outcomes": outcomes, "refunds": len(refunds),
            "statuses": Counter(r["status"] for r in runs.values()),
            "steps": sum(len(t) for t in steps.values())}


def chaos_stack(tmp_path, name: str, **options) -> Iterator[Stack]:
    """A deployment of its own (Postgres + Redis; skipped on the embedded default), dropped
    with its database and queue afterwards."""
    if not production_mode():
        pytest.skip("needs Redis + Postgres: worker processes share the broker")
    deployment = Stack(workdir=tmp_path, name=f"agentdesk_{name}_{os.getpid()}", web=False,
                       worker_args=["--pool", "threads", "-c", "8"], **options)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
        if deployment.env:
            drop_database(deployment.env["DATABASE_URL"])
            forget_queue(deployment.env["REDIS_URL"], deployment.name)


@pytest.fixture
def stack(tmp_path):
    yield from chaos_stack(
        tmp_path, "chaos", workers=WORKERS, beat=True, latency_scale=0.05,
        extra_env={"AGENTDESK_RUN_LEASE_SECONDS": "3", "AGENTDESK_RUN_SLICE_SECONDS": "2"})


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with contextlib.suppress(psycopg.Error), psycopg.connect(
        url.rsplit("/", 1)[0] + "/postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def forget_queue(url: str, queue: str) -> None:
    """Drop the stack's queue, cache keys and the messages its killed workers left unacked
    (Redis would hand those back to a queue nobody reads once their visibility times out)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(url)
        for pattern in (f"{queue}*", f"_kombu.binding*.{queue}"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
        for tag, raw in client.hscan_iter("unacked"):
            with contextlib.suppress(ValueError, LookupError, TypeError):
                if json.loads(raw)[2] == queue:  # [message, exchange, routing key]
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)


@pytest.mark.timeout(290)
def test_runs_survive_workers_killed_at_random(stack, capsys):
    import psycopg

    seed = int(os.environ.get("CHAOS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    # Each message is unique ("ticket N" is no order number), so model calls are not
    # served from the response cache and every run spends tokens of its own.
    messages = [f"{SCENARIOS[MIX[i % len(MIX)]]} (ticket {i})" for i in range(RUNS)]
    t0 = time.monotonic()
    submitter = manage_shell(stack, SUBMITTER, "submitter",
                             CHAOS_MESSAGES=json.dumps(messages),
                             CHAOS_SUBMIT_PAUSE=str(SUBMIT_SECONDS / RUNS))
    reaper = None
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as db:
        try:
            kills, in_flight = kill_workers(stack, db, rng, submitter)
            t_kills = time.monotonic() - t0
            assert submitter.wait(timeout=60) == 0, (stack.workdir / "submitter.out").read_text()
            reaper = manage_shell(stack, REAPER, "reaper", CHAOS_REAP_EVERY=str(REAP_EVERY_S))
            t_drain = drain(db)
            refunds = journal(stack.workdir / "refunds.jsonl")
            report = check(db, refunds)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nseed={seed}\n{stack.log_tail()}") from None
        finally:
            for proc in (submitter, reaper):
                if proc is not None:
                    stop(proc)
    reaped = sum(
        int(line.split()[1]) for line in (stack.workdir / "reaper.out").read_text().splitlines()
        if line.startswith("REAPED ")
    )
    summary = (
        f"\nchaos: seed={seed} runs={RUNS} workers={WORKERS} kills={kills} "
        f"leased_runs_per_kill={sum(in_flight) / max(kills, 1):.1f}\n"
        f"  kill_phase={t_kills:.1f}s drain={t_drain:.1f}s steps={report['steps']} "
        f"refunds={report['refunds']} reaped_by_test={reaped} (+ beat every 10s)\n"
        f"  statuses: {dict(sorted(report['statuses'].items()))}\n"
        f"  outcomes: {dict(sorted(report['outcomes'].items()))}\n"
    )
    with capsys.disabled():
        print(summary)
    assert kills >= MIN_KILLS, f"only {kills} kills: {summary}"


# -- money: the reservations of a worker killed mid-call go back -------------------------

MONEY_RUNS = 8
MONEY_SUBMITTER = """
import os
from decimal import Decimal
from runs.breakers import reset_breakers
from runs.models import Team
from runs.services import submit_run
reset_breakers()
team = Team.objects.get(slug="demo")
team.daily_budget_usd = Decimal("50")  # a real budget: every call reserves against it
team.save()
for i in range(int(os.environ["MONEY_RUNS"])):
    submit_run(team=team, agent_slug="support-refunds", user_id=None,
               task_input={"message": f"Where is my order 1077? (ticket {i})"})
print("SUBMITTED", flush=True)
"""


def money(db) -> dict[str, Any]:
    """The team's day, and what its runs hold and have recorded (committed state only)."""
    reserved, spent = db.execute(
        "SELECT coalesce(sum(reserved_usd), 0), coalesce(sum(spent_usd), 0) "
        "FROM runs_teamdailyspend").fetchone()
    held, holding, recorded = db.execute(
        "SELECT coalesce(sum(reserved_usd), 0), count(*) FILTER (WHERE reserved_usd > 0), "
        "coalesce(sum(cost_usd), 0) FROM runs_run").fetchone()
    return {"reserved": reserved, "spent": spent, "held": held, "holding": holding,
            "recorded": recorded}


@pytest.fixture
def slow_stack(tmp_path):
    """One worker and model calls slow enough (0.9 s on the small tier, 3.6 s on the large)
    to be killed in the middle of; leases long enough that a live worker never loses one."""
    yield from chaos_stack(
        tmp_path, "money", workers=1, beat=False, latency_scale=6.0,
        extra_env={"AGENTDESK_RUN_LEASE_SECONDS": "15", "AGENTDESK_RUN_SLICE_SECONDS": "10"})


@pytest.mark.timeout(240)
def test_reservations_of_a_worker_killed_mid_call_go_back(slow_stack, capsys):
    """SIGKILL the worker while runs hold team-budget reservations for calls in flight: the
    team's reserved total stays up (attributable: it is what the runs hold) until the reaper
    takes their expired leases; then it is 0 again, and the team's spend is the sum of the
    runs' recorded costs (the dead calls' cost is unknown and was never recorded)."""
    import psycopg

    stack = slow_stack
    submitter = manage_shell(stack, MONEY_SUBMITTER, "submitter", MONEY_RUNS=str(MONEY_RUNS))
    reaper = None
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as db:
        try:
            assert submitter.wait(timeout=60) == 0, (stack.workdir / "submitter.out").read_text()
            # Freeze the worker (SIGSTOP) with at least two calls in flight, at a moment when
            # every settled call is already recorded on its run: a worker killed between a
            # settle and the step's checkpoint would have spent money no step records.
            worker = stack.procs["worker0"].pid
            deadline = time.monotonic() + 90
            while True:
                assert time.monotonic() < deadline, f"no calls in flight to kill: {money(db)}"
                if money(db)["holding"] >= 2:
                    os.killpg(worker, signal.SIGSTOP)
                    frozen = money(db)
                    if (frozen["holding"] >= 2 and frozen["spent"] == frozen["recorded"]
                            and frozen["reserved"] == frozen["held"]):
                        break
                    os.killpg(worker, signal.SIGCONT)
                time.sleep(0.05)
            stack.kill("worker0")  # SIGKILL, mid-call
            dead = money(db)
            assert dead["reserved"] > 0 and dead["reserved"] == dead["held"], dead

            stack.start_worker(0)
            reaper = manage_shell(stack, REAPER, "reaper", CHAOS_REAP_EVERY="1")
            drain(db)
            after = money(db)
            assert (after["reserved"], after["held"], after["holding"]) == (0, 0, 0), after
            assert after["spent"] == after["recorded"] > dead["spent"], after
            statuses = Counter(s for (s,) in db.execute("SELECT status FROM runs_run"))
            assert set(statuses) <= TERMINAL | {"waiting_human"}, statuses
            assert sum(statuses.values()) == MONEY_RUNS
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.log_tail()}") from None
        finally:
            for proc in (submitter, reaper):
                if proc is not None:
                    stop(proc)
    with capsys.disabled():
        print(f"\nmoney: killed with {dead['holding']} calls in flight holding "
              f"{dead['reserved']} USD; after the reaper: reserved {after['reserved']}, spent "
              f"{after['spent']} = recorded {after['recorded']}; {dict(statuses)}")
