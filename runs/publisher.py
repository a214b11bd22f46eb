"""One long-lived event loop per process that sends live events to the channel layer.

A worker thread has no event loop, and ``async_to_sync(layer.group_send)`` would make a
loop per call — and channels_redis a Redis connection per loop: ~9 ms on every step
(``make bench``, overhead). Here a daemon thread owns one loop (so one connection pool)
and a FIFO queue; ``submit`` returns at once and the loop sends the events one after the
other, so a run's events still arrive in the order they were committed.

Live events are hints (every page re-reads on reconnect), so the queue is bounded and a
full queue or a failed send is logged, never raised into the write that caused it.
``flush`` waits for what is queued (tests, and at interpreter exit a short while).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000
EXIT_FLUSH_SECONDS = 2.0


class Publisher:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[str, dict[str, str]]] | None = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                       name="live-publisher")
        self.thread.start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.queue = asyncio.Queue(maxsize=MAX_QUEUED)
        self.loop.create_task(self._drain())
        ready.set()
        self.loop.run_forever()

    async def _drain(self) -> None:
        assert self.queue is not None
        while True:
            group, message = await self.queue.get()
            try:
                await self.layer.group_send(group, message)
            except Exception:  # a live update must never take the publisher down
                log.exception("publish failed", extra={"group": group,
                                                       "kind": message.get("kind")})
            finally:
                self.queue.task_done()

    def submit(self, group: str, message: dict[str, str]) -> None:
        self.loop.call_soon_threadsafe(self._put, group, message)

    def _put(self, group: str, message: dict[str, str]) -> None:
        assert self.queue is not None
        try:
            self.queue.put_nowait((group, message))
        except asyncio.QueueFull:
            log.warning("live event dropped: publisher queue full",
                        extra={"group": group, "kind": message.get("kind")})

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far was sent; False on timeout."""
        if not self.thread.is_alive():
            return False

        async def drained() -> None:
            assert self.queue is not None
            await self.queue.join()

        future = asyncio.run_coroutine_threadsafe(drained(), self.loop)
        try:
            future.result(timeout)
            return True
        except TimeoutError:
            future.cancel()
            return False


_lock = threading.Lock()
_publisher: Publisher | None = None
_pid: int | None = None


def publisher_for(layer: Any) -> Publisher:
    """This process's publisher (a forked child makes its own: threads do not survive fork)."""
    global _publisher, _pid
    with _lock:
        if _publisher is None or _pid != os.getpid() or _publisher.layer is not layer:
            _publisher, _pid = Publisher(layer), os.getpid()
        return _publisher


def flush(timeout: float = 5.0) -> bool:
    current = _publisher
    if current is None or _pid != os.getpid():
        return True
    return current.flush(timeout)


atexit.register(flush, EXIT_FLUSH_SECONDS)
