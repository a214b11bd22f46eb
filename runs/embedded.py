"""The embedded default in one process: ASGI server, a Celery worker thread, the simulator.

This is what ``make run`` starts on a laptop with nothing configured. It is the same code
as production — Celery tasks on a (memory) broker, Channels groups on a (memory) layer —
only hosted in one process: the worker runs as threads beside the server, and publishes
are handed to the server's event loop (see ``runs.events.bind_loop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import uvicorn
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from agentdesk.celery import app as celery_app

from . import events

log = logging.getLogger(__name__)


@contextlib.contextmanager
def simulator_if_needed() -> Iterator[str | None]:
    """Start the bundled LLM simulator when the app points at it and nothing answers there."""
    url = settings.LLM_BASE_URL or ""
    parsed = urlparse(url)
    if settings.OPENAI_API_KEY or parsed.hostname not in ("127.0.0.1", "localhost"):
        yield None
        return
    from agentdesk.llmsim.server import start_in_thread

    try:
        sim = start_in_thread(port=parsed.port or settings.LLMSIM_PORT)
    except RuntimeError:
        log.warning("an LLM simulator already answers at %s; using it", url)
        yield url
        return
    try:
        yield sim.base_url
    finally:
        sim.stop()


@contextlib.contextmanager
def worker_thread(concurrency: int | None = None) -> Iterator[None]:
    """A Celery worker consuming the in-process broker from a pool of threads."""
    concurrency = concurrency or settings.EMBEDDED_WORKER_THREADS
    with start_worker(
        celery_app, pool="threads", concurrency=concurrency, perform_ping_check=False,
        loglevel="WARNING", shutdown_timeout=30,
    ):
        yield


@contextlib.contextmanager
def beat_thread() -> Iterator[None]:
    """Celery beat's schedule, sent from a thread: embedded beat would fork a process,
    which cannot reach the in-process broker."""
    stop = threading.Event()
    schedule = [(entry["task"], float(entry["schedule"]))
                for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    due = {task: time.monotonic() + every for task, every in schedule}

    def loop() -> None:
        while not stop.wait(1.0):
            now = time.monotonic()
            for task, every in schedule:
                if now >= due[task]:
                    due[task] = now + every
                    celery_app.send_task(task)

    thread = threading.Thread(target=loop, name="embedded-beat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


async def serve(host: str, port: int) -> None:
    events.bind_loop(asyncio.get_running_loop())
    config = uvicorn.Config(
        "agentdesk.asgi:application", host=host, port=port, lifespan="off",
        log_level="warning", ws_ping_interval=20,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        events.bind_loop(None)


def run(host: str, port: int, *, with_worker: bool = True) -> None:
    with simulator_if_needed() as sim_url:
        if sim_url:
            log.info("LLM simulator at %s", sim_url)
        worker = worker_thread() if with_worker else contextlib.nullcontext()
        beat = beat_thread() if with_worker else contextlib.nullcontext()
        with worker, beat:
            asyncio.run(serve(host, port))
