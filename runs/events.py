"""Live updates: the one place that publishes to Channels groups, always after commit.

Payloads carry server-rendered HTML fragments (htmx out-of-band swaps), rendered once
here and fanned out to every consumer of the group. Groups are per team (the inbox) and
per run (the run and escalation pages), so a consumer only ever hears its own teams.

The in-memory channel layer of the embedded mode is bound to the ASGI server's event loop;
a publish from a worker thread is handed to that loop (``bind_loop``) instead of running
on a loop of its own, which the in-memory layer does not support. With Redis, events go to
the process's long-lived publisher loop (``runs.publisher``): no loop or connection per
event, and the writer does not wait for the send.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from .publisher import publisher_for

log = logging.getLogger(__name__)
_server_loop: asyncio.AbstractEventLoop | None = None


def bind_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Route publishes from other threads to ``loop`` (embedded mode and tests)."""
    global _server_loop
    _server_loop = loop


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


@dataclass(frozen=True)
class LiveEvent:
    """One message for a group: ``html`` is a set of hx-swap-oob fragments."""

    group: str
    kind: str
    html: str

    def message(self) -> dict[str, str]:
        # the group goes along: each consumer re-checks its user may still hear it
        return {"type": "live.event", "kind": self.kind, "html": self.html, "group": self.group}


def publish_on_commit(build: Callable[[], list[LiveEvent]]) -> None:
    """After commit, build the events (render their HTML) and publish them.

    Rendering waits for the commit too, so a template problem can never undo a write.
    """

    def send() -> None:
        try:
            built = build()
        except Exception:
            log.exception("building live events failed")
            return
        publish(*built)

    transaction.on_commit(send)


def publish(*events: LiveEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for event in events:
        try:
            _send(layer, event)
        except Exception:  # a live update must never fail the write it reports
            log.exception("publish failed", extra={"group": event.group, "kind": event.kind})


def _send(layer, event: LiveEvent) -> None:
    loop = _server_loop
    if loop is not None and loop.is_running():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(layer.group_send(event.group, event.message()))
            return
        asyncio.run_coroutine_threadsafe(
            layer.group_send(event.group, event.message()), loop
        ).result(timeout=5)
        return
    if isinstance(layer, InMemoryChannelLayer):  # bound to the loop that made it
        async_to_sync(layer.group_send)(event.group, event.message())
        return
    publisher_for(layer).submit(event.group, event.message())  # Redis: one loop per process
