"""Where a benchmark runs: a fresh database, the simulator, and workers.

Each benchmark runs in a process of its own (see ``bench.harness``) and calls one of these
before it imports any model: Django is configured from environment variables, so the
fresh database, queue, cache and channel prefixes are set in ``os.environ`` first.

- Postgres + Redis (``DATABASE_URL`` and ``REDIS_URL`` set): a fresh Postgres database per
  benchmark; Redis as broker, channel layer and cache, under a prefix of its own. Worker
  benchmarks start ``tests.stack.Stack``: real ``celery -A agentdesk worker`` processes.
- Embedded (nothing set): a fresh SQLite file (WAL); the in-process broker, channel layer
  and cache; workers are ``runs.embedded.worker_thread`` in this process, as ``make run``.

The simulator always runs in a process of its own, as a remote API would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from tests.stack import Stack, free_port, fresh_postgres, production_mode, wait_http

PASSWORD = "bench-pass-123"


def mode() -> str:
    return "postgres+redis" if production_mode() else "embedded"


def mode_label() -> str:
    if production_mode():
        return "Postgres + Redis (production topology)"
    return "embedded default (SQLite WAL, in-process broker and channel layer)"


def latency_scale_for(small_call_ms: float) -> float:
    """The simulator's latency multiplier that makes a sim-small call take ``small_call_ms``."""
    from agentdesk.llmsim.models import MODELS

    return small_call_ms / MODELS["sim-small"].base_latency_ms


def _isolate(name: str, workdir: Path) -> None:
    """Environment for this benchmark's process: its own data dir, prefixes, the simulator."""
    token = f"bench_{name}_{os.getpid()}"
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
        "AGENTDESK_DATA_DIR": str(workdir),
        "AGENTDESK_DEMO_PASSWORD": PASSWORD,
        "CELERY_QUEUE": token,
        "CHANNELS_PREFIX": token,
        "CACHE_PREFIX": token,  # no response cached by an earlier bench run is reused
    })
    # a deployment's processes share one key (the production topology refuses to start
    # without); they serve plain HTTP on this machine (that topology is HTTPS-only by default)
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_SECURE", "false")
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):  # always the simulator, never an API
        os.environ.pop(var, None)


@dataclass
class Simulator:
    """The LLM simulator in a process of its own, as in production: its CPU time (the
    scenario logic, JSON, HTTP) is not taken from the process being measured."""

    port: int
    proc: subprocess.Popen

    @classmethod
    def start(cls, workdir: Path, latency_scale: float) -> Simulator:
        port = free_port()
        log = (workdir / "llmsim.log").open("a")
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentdesk.llmsim", "--port", str(port),
             "--latency-scale", str(latency_scale)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_http(f"http://127.0.0.1:{port}/healthz")
        return cls(port=port, proc=proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class InProcess:
    """Django in this process on a fresh database; the simulator in its own process."""

    name: str
    workdir: Path
    sim: Simulator
    database_url: str
    _loop: asyncio.AbstractEventLoop | None = None
    _loop_thread: threading.Thread | None = None

    def worker_errors(self) -> Counter[str]:
        return Counter()  # in-process workers log to this process; failures show as stranded

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self.sim.stop()
        purge_queue(os.environ["CELERY_QUEUE"])
        tidy(self.workdir, self.database_url)

    @contextlib.contextmanager
    def running(self, processes: int, threads: int) -> Iterator[None]:
        """Embedded workers: the Celery worker thread pool of ``make run``, in this process,
        with ``processes × threads`` threads (one process is all the embedded mode has)."""
        from runs import embedded

        with embedded.worker_thread(concurrency=processes * threads):
            yield

    def worker_pids(self) -> list[int]:
        """The processes the workers run in: this one."""
        return [os.getpid()]

    def simulator_pids(self) -> list[int]:
        return [self.sim.proc.pid]

    def bind_event_loop(self) -> None:
        """Embedded mode hands every publish to the server's event loop (the in-memory
        channel layer works from one loop); this process gets such a loop, as ``make run``."""
        from runs import events

        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._loop_thread.start()
        events.bind_loop(self._loop)


def in_process(name: str, *, latency_scale: float = 0.0) -> InProcess:
    """Fresh database (migrated, demo data seeded), simulator thread, Django set up."""
    workdir = Path(tempfile.mkdtemp(prefix=f"agentdesk-bench-{name}-"))
    _isolate(name, workdir)
    if production_mode():
        url = fresh_postgres(os.environ["DATABASE_URL"], f"agentdesk_bench_{name}")
    else:
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["DATABASE_URL"] = url
    sim = Simulator.start(workdir, latency_scale)
    os.environ["LLMSIM_PORT"] = str(sim.port)
    _setup_django(migrate=True)
    env = InProcess(name=name, workdir=workdir, sim=sim, database_url=url)
    if not production_mode():
        env.bind_event_loop()
    return env


@dataclass
class Deployment:
    """Workers in their own processes (Postgres + Redis) — ``tests.stack.Stack``."""

    stack: Stack
    worker_args: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def running(self, processes: int, threads: int) -> Iterator[None]:
        """``processes`` × ``celery -A agentdesk worker --pool threads -c threads``."""
        self.stack.worker_args = ["--pool", "threads", "-c", str(threads)]
        for i in range(processes):
            self.stack.start_worker(i)
        try:
            yield
        finally:
            for i in range(processes):
                self.stack.kill(f"worker{i}")

    def worker_pids(self) -> list[int]:
        return [proc.pid for name, proc in self.stack.procs.items() if name.startswith("worker")]

    def simulator_pids(self) -> list[int]:
        return [proc.pid for name, proc in self.stack.procs.items() if name == "llmsim"]

    def worker_errors(self) -> Counter[str]:
        return log_errors(sorted(self.stack.workdir.glob("worker*.log")))

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
        self.stack.stop()
        purge_queue(self.stack.env["CELERY_QUEUE"])
        tidy(self.stack.workdir, self.stack.env["DATABASE_URL"])


def for_workers(name: str, *, latency_scale: float) -> InProcess | Deployment:
    """Where worker benchmarks run: a ``Stack`` on Postgres + Redis, else in this process."""
    if production_mode():
        return stack(name, latency_scale=latency_scale)
    return in_process(name, latency_scale=latency_scale)


def stack(name: str, *, latency_scale: float, web: bool = False, workers: int = 0,
          worker_args: list[str] | None = None) -> Deployment:
    """Migrated and seeded database, simulator process; workers start with ``running``
    (or at once: ``workers`` processes with ``worker_args``); ``web`` adds the ASGI server
    (uvicorn; on the embedded default ``run_embedded``, which also holds the workers)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"agentdesk-bench-{name}-"))
    _isolate(name, workdir)
    deployment = Stack(
        workdir=workdir, name=f"agentdesk_bench_{name}", workers=workers, web=web,
        latency_scale=latency_scale, password=PASSWORD,
    )
    if worker_args is not None:
        deployment.worker_args = worker_args
    deployment.start()  # the simulator (and the web server); workers come with ``running``
    for var in ("DATABASE_URL", "CELERY_QUEUE", "CHANNELS_PREFIX", "CACHE_PREFIX",
                "LLMSIM_PORT", "AGENTDESK_DATA_DIR"):
        os.environ[var] = deployment.env[var]
    _setup_django(migrate=False)
    return Deployment(stack=deployment)


def _setup_django(*, migrate: bool) -> None:
    import django

    django.setup()
    from runs.breakers import reset_breakers

    reset_breakers()  # the bench's Redis may hold a breaker another run left open
    if migrate:
        from django.core.management import call_command

        from runs.demo import seed_demo

        call_command("migrate", "--no-input", verbosity=0)
        seed_demo(PASSWORD)


def tidy(workdir: Path, database_url: str) -> None:
    """Drop the benchmark's database and files (``BENCH_KEEP=1`` keeps them to look at)."""
    if os.environ.get("BENCH_KEEP"):
        return
    tidy_database(database_url)
    shutil.rmtree(workdir, ignore_errors=True)


def tidy_database(database_url: str) -> None:
    """Drop a benchmark's Postgres database (``BENCH_KEEP=1`` keeps it)."""
    if os.environ.get("BENCH_KEEP") or not database_url.startswith("postgres"):
        return
    import psycopg

    name = urlparse(database_url).path.lstrip("/")
    admin = urlunparse(urlparse(database_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def purge_queue(queue: str) -> None:
    """Drop what in-process benchmarks enqueued on Redis (nobody consumes their queue)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return
    import redis

    redis.Redis.from_url(url).delete(queue, f"_kombu.binding.{queue}",
                                     f"_kombu.binding_permanent.{queue}")


def settle(run_ids: list[int], timeout: float, stall_s: float = 20.0) -> bool:
    """Wait until no run is queued or running. Gives up at ``timeout``, or when no step was
    committed for ``stall_s`` (a run whose task failed stays queued forever)."""
    from runs.models import Run, Step

    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        if not Run.objects.filter(pk__in=run_ids, status__in=["queued", "running"]).exists():
            return True
        steps = Step.objects.filter(run_id__in=run_ids).count()
        if steps != last:
            last, last_change = steps, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return False
        time.sleep(1.0)
    return False



def log_errors(paths: list[Path]) -> Counter[str]:
    """Distinct task errors in worker logs (numbers and ids masked so they group)."""
    found: Counter[str] = Counter()
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if "raised unexpected" in line:
                text = line.split("raised unexpected: ", 1)[1]
                found[re.sub(r"\b[0-9a-f-]{8,}\b|\d+", "N", text)[:160]] += 1
    return found
