"""Live console latency: a step's commit → the operator's websocket, a decision → the resume.

The whole app runs as deployed (``bench.deploy.stack`` with the web server): on Postgres +
Redis uvicorn, two ``celery worker --pool threads`` processes and the simulator, each a
process of its own; on the embedded default ``run_embedded``. This process plays the
operators, through the network only:

1. ``WATCHERS`` operators are logged in (the login form) with the inbox websocket open
   (``/ws/inbox/``, as the inbox page holds it).
2. ``RUNS`` refund requests that need approval are submitted through the API at
   ``SUBMIT_PER_S``; each ends in an ``approval_required`` escalation. *Escalation latency*
   = the moment a watcher receives that escalation's signal − the escalation row's
   ``created_at``. The row is written inside the checkpoint transaction just before it
   commits, so the number also holds the rest of that transaction: an upper bound.
3. An operator approves each one (the console's decide POST, as htmx sends it) at
   ``DECIDE_PER_S``. *Decision to resume* = the start of the run's first step after the
   decision (that step's ``created_at`` − its ``latency_ms``; ``created_at`` is set just
   before the step's commit, so again an upper bound) − the moment before the POST was sent.

Both clocks are this machine's wall clock (``time.time`` here, ``timezone.now`` in the
workers), so the differences need no synchronisation.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field

import httpx

from . import deploy
from .report import Section, Target, percentile

section = Section("Live console latency")
TARGETS = {
    "escalation_latency_p95_ms": Target("<=", 100.0, "ms"),
    "decision_to_resume_p95_ms": Target("<=", 200.0, "ms"),
}
RUNS = 200
WATCHERS = 5
SUBMIT_PER_S = 10.0
DECIDE_PER_S = 10.0
WORKER_PROCESSES, WORKER_THREADS = 2, 8
SMALL_CALL_MS = 150  # model calls take time, as they do: runs overlap and workers are busy
MESSAGE = "I want a refund for order 1042, reference {i:05d}"  # over the approval amount
_SIGNAL_RE = re.compile(r'data-kind="(?P<kind>[\w.]+)" data-esc="(?P<esc>\d+)"')


@dataclass
class Watchers:
    """Operators' inbox websockets, on an event loop in a thread of their own: every
    escalation signal is recorded with the time it arrived."""

    url: str
    cookie: str
    origin: str
    count: int
    received: list[tuple[int, str, int, float]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self.connected.wait(30):
            raise RuntimeError("the inbox websockets did not connect")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        from websockets.asyncio.client import connect

        headers = {"Cookie": self.cookie, "Origin": self.origin}
        sockets = [await connect(self.url, additional_headers=headers)
                   for _ in range(self.count)]
        self.connected.set()
        readers = [asyncio.create_task(self._read(i, ws)) for i, ws in enumerate(sockets)]
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        for reader in readers:
            reader.cancel()
        for ws in sockets:
            await ws.close()

    async def _read(self, watcher: int, ws) -> None:
        async for message in ws:
            arrived = time.time()
            for match in _SIGNAL_RE.finditer(message):
                self.received.append((watcher, match["kind"], int(match["esc"]), arrived))


def login(base_url: str, username: str) -> httpx.Client:
    """A session as a browser gets one: the login form with its CSRF token."""
    client = httpx.Client(base_url=base_url, timeout=30)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    response = client.post("/accounts/login/", data={
        "username": username, "password": deploy.PASSWORD, "csrfmiddlewaretoken": token[1],
    })
    if "sessionid" not in client.cookies:
        raise RuntimeError(f"login as {username} failed ({response.status_code})")
    return client


def api_key() -> str:
    from runs import api_keys
    from runs.models import Team

    return api_keys.create_api_key(team=Team.objects.get(slug="demo"), name="bench-live",
                                   rate_limit_per_minute=100_000).raw


def paced(count: int, per_s: float):
    """Yield 0..count-1, one every 1/per_s seconds (on schedule, not after each call)."""
    began = time.monotonic()
    for i in range(count):
        delay = began + i / per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield i


def submit_all(base_url: str, key: str) -> list[int]:
    ids = []
    with httpx.Client(base_url=base_url, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as api:
        for i in paced(RUNS, SUBMIT_PER_S):
            response = api.post("/api/v1/runs", json={
                "agent": "support-refunds", "input": {"message": MESSAGE.format(i=i)}})
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


def wait_for(run_ids: list[int], statuses: set[str], timeout: float) -> dict[str, int]:
    """Wait until every run is in one of ``statuses``; the final count per status."""
    from django.db.models import Count

    from runs.models import Run

    deadline = time.monotonic() + timeout
    while True:
        counts = dict(Run.objects.filter(pk__in=run_ids).values_list("status")
                      .annotate(n=Count("pk")).values_list("status", "n"))
        if set(counts) <= statuses or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def decide_all(operator: httpx.Client, escalations: list[int]) -> tuple[dict[int, float], int]:
    """Approve each escalation as the console does; when each POST was sent, and failures."""
    sent: dict[int, float] = {}
    failed = 0
    csrf = operator.cookies.get("csrftoken") or ""
    for i in paced(len(escalations), DECIDE_PER_S):
        esc = escalations[i]
        sent[esc] = time.time()
        response = operator.post(f"/escalations/{esc}/decide/", data={"action": "approve"},
                                 headers={"HX-Request": "true", "X-CSRFToken": csrf})
        failed += response.status_code != 200
    return sent, failed


def escalation_latencies(watchers: Watchers, created: dict[int, float]) -> tuple[list[float],
                                                                                 int]:
    """Per watcher and escalation, the first signal's delay in ms; and how many never came."""
    first: dict[tuple[int, int], float] = {}
    for watcher, kind, esc, arrived in list(watchers.received):
        if kind == "escalation.opened" and esc in created:
            first.setdefault((watcher, esc), arrived)
    latencies = [(arrived - created[esc]) * 1000 for (_, esc), arrived in first.items()]
    return latencies, watchers.count * len(created) - len(first)


def resume_latencies(sent: dict[int, float]) -> tuple[list[float], int]:
    """Decision sent → the start of the run's first step after its escalation, in ms."""
    from runs.models import Escalation, Step

    escalations = {e.pk: e for e in Escalation.objects.filter(pk__in=sent)}
    latencies, missing = [], 0
    for esc_id, at in sent.items():
        esc = escalations[esc_id]
        step = (Step.objects.filter(run_id=esc.run_id, index__gt=esc.step_index)
                .order_by("index").only("created_at", "latency_ms").first())
        if step is None:
            missing += 1
            continue
        started = step.created_at.timestamp() - step.latency_ms / 1000
        latencies.append((started - at) * 1000)
    return latencies, missing


def run() -> dict[str, float]:
    env = deploy.stack(
        "live_latency", latency_scale=deploy.latency_scale_for(SMALL_CALL_MS), web=True,
        workers=WORKER_PROCESSES, worker_args=["--pool", "threads", "-c", str(WORKER_THREADS)],
    )
    watchers = None
    try:
        from runs.models import Escalation

        base = env.stack.base_url
        operator = login(base, "operator")
        cookie = "; ".join(f"{k}={v}" for k, v in operator.cookies.items())
        watchers = Watchers(url=base.replace("http", "ws", 1) + "/ws/inbox/", cookie=cookie,
                            origin=base, count=WATCHERS)
        watchers.start()
        run_ids = submit_all(base, api_key())
        waiting = wait_for(run_ids, {"waiting_human", "succeeded", "failed"}, timeout=120)
        time.sleep(1.0)  # the last signals are on their way
        opened = list(Escalation.objects.filter(run_id__in=run_ids, status="open")
                      .order_by("pk").values_list("pk", "created_at"))
        created = {pk: at.timestamp() for pk, at in opened}
        esc_ms, esc_missing = escalation_latencies(watchers, created)
        sent, failed = decide_all(operator, list(created))
        ended = wait_for(run_ids, {"succeeded", "failed", "aborted"}, timeout=120)
        resume_ms, resume_missing = resume_latencies(sent)
        errors = env.worker_errors()
    finally:
        if watchers is not None:
            watchers.stop()
        env.close()
    metrics = _metrics(esc_ms, resume_ms)
    _report(metrics, esc_ms, resume_ms, waiting=waiting, ended=ended, esc_missing=esc_missing,
            resume_missing=resume_missing, failed=failed, errors=sum(errors.values()))
    return metrics


def _metrics(esc_ms: list[float], resume_ms: list[float]) -> dict[str, float]:
    if not esc_ms or not resume_ms:
        raise RuntimeError("no escalation or resume was observed")
    return {
        "escalation_latency_p50_ms": round(percentile(esc_ms, 50), 2),
        "escalation_latency_p95_ms": round(percentile(esc_ms, 95), 2),
        "decision_to_resume_p50_ms": round(percentile(resume_ms, 50), 2),
        "decision_to_resume_p95_ms": round(percentile(resume_ms, 95), 2),
    }


def _report(metrics: dict[str, float], esc_ms: list[float], resume_ms: list[float], *,
            waiting: dict[str, int], ended: dict[str, int], esc_missing: int,
            resume_missing: int, failed: int, errors: int) -> None:
    workers = ("run_embedded: web server and worker threads in one process"
               if deploy.mode() == "embedded" else
               f"uvicorn + {WORKER_PROCESSES} × `celery worker --pool threads -c "
               f"{WORKER_THREADS}`, each its own process")
    section.add(
        f"**Mode:** {deploy.mode_label()}; {workers}; simulator process with sim-small calls "
        f"of ~{SMALL_CALL_MS} ms. **Load:** {RUNS} refund requests over the approval amount "
        f"submitted through the API at {SUBMIT_PER_S:.0f}/s while {WATCHERS} operators watch "
        f"the inbox over websockets; then one operator approves each escalation at "
        f"{DECIDE_PER_S:.0f}/s through the console's decide POST.",
        "See the module docstring (`bench/live_latency.py`) for exactly where each clock "
        "starts and stops.",
    )
    section.verdicts(metrics, TARGETS)
    section.table(
        ["latency", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms", "never arrived"],
        [["escalation committed → inbox websocket", len(esc_ms), percentile(esc_ms, 50),
          percentile(esc_ms, 95), percentile(esc_ms, 99), max(esc_ms), esc_missing],
         ["decision POST sent → next step starts", len(resume_ms), percentile(resume_ms, 50),
          percentile(resume_ms, 95), percentile(resume_ms, 99), max(resume_ms),
          resume_missing]],
    )
    section.add(
        f"Runs after submission: {_counts(waiting)}; after the decisions: {_counts(ended)}. "
        f"Decide POSTs that failed: {failed}. Task errors in worker logs: {errors}."
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
