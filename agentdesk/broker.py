"""kombu's Redis transport, with one client per channel for what it sends.

kombu's Redis channel builds a new ``redis.Redis`` object for every command it sends
outside a pipeline — every published message among them — and a client's constructor
installs some 170 response callbacks: 0.14 ms of CPU per message, a third of Celery's
whole publish (measured on the API's submit path, ``make bench``). The client is only a
handle on the channel's connection pool, which is thread-safe and holds the sockets, so
one client per channel sends the same commands over the same connections.

``settings.CELERY_BROKER_TRANSPORT`` names this module for ``redis://`` brokers (a
``rediss://`` URL keeps kombu's own transport: its TLS defaults key on the scheme).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    @cached_property
    def _sender(self) -> Any:
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._sender


class Transport(redis.Transport):
    Channel = Channel
