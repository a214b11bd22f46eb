"""A worker thread gives its database connection back to the pool while it waits on a
model or a tool, and takes one again for its next query.

Each Celery thread advances one run, and a run spends nearly all its time waiting on model
calls (~500 ms each) between database work of a few milliseconds. Holding the connection
through the wait made every thread in flight need a Postgres connection of its own: two
workers of 100 threads wanted 200, more than the server's default ``max_connections``
(100), and the pool's growth stalled there (``make bench``, throughput: about 85 runs
advanced at once). Given back, a few dozen connections serve hundreds of waiting threads:
a process's pool holds 20 at most by default (``DB_POOL_MAX_SIZE``). A larger pool only
hurt: two workers' pools of 100 grew past ``max_connections``, and every refused attempt
cost the server a new backend process (``make bench``, throughput: 220–240 steps/s against
263–268 with 20).

Only with psycopg's pool (``DB_POOL``, the default on Postgres): there a close is a
``putconn``, and the next query a ``getconn``, both in memory. Without a pool a close
would mean a new connection per model call, so nothing is given back; nor inside a
transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from agentdesk.runtime.llm import DETERMINISTIC, ModelClient, ModelReply, Sampling
from agentdesk.runtime.profiles import ModelProfile


def give_back() -> None:
    """Return this thread's connection to the pool, if it is pooled and not in use."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


class ConnectionFreeModel:
    """A ``ModelClient`` that holds no database connection while the model answers."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner

    def complete(self, *, profile: ModelProfile, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]], max_tokens: int,
                 sampling: Sampling = DETERMINISTIC) -> ModelReply:
        give_back()
        return self.inner.complete(profile=profile, messages=messages, tools=tools,
                                   max_tokens=max_tokens, sampling=sampling)
