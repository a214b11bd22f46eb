"""Anchor: the commit floor — one INSERT and its COMMIT on the bench's Postgres.

What no durable step can beat on this machine and this server: a client round trip for
``BEGIN``, one for a small ``INSERT`` and one for the ``COMMIT`` that waits for the WAL to
reach the disk (fsync as configured on the server). Measured with psycopg (no ORM) on the
same database as the benchmark it anchors, in the same process, interleaved with it
(``bench.overhead`` calls ``sample`` between its blocks of runs), so the machine's load at
that moment weighs on both alike.

Also measured, for context: the same INSERT as one autocommit statement (a single round
trip; the server commits it implicitly).
"""

from __future__ import annotations

import time

TABLE = "bench_commit_floor"


class CommitFloor:
    """A connection of its own and a table of its own, in the benchmark's database."""

    def __init__(self, database_url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(database_url.replace("postgres://", "postgresql://", 1),
                                    autocommit=True)
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                          "id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), "
                          "payload text NOT NULL)")
        self.transaction_ms: list[float] = []
        self.autocommit_ms: list[float] = []
        self._n = 0

    def sample(self, count: int) -> None:
        """``count`` of each: BEGIN; INSERT; COMMIT — then a single autocommit INSERT."""
        insert = f"INSERT INTO {TABLE} (payload) VALUES (%s)"
        for _ in range(count):
            self._n += 1
            started = time.perf_counter()
            with self.conn.transaction():
                self.conn.execute(insert, (f"step {self._n}",))
            self.transaction_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            self.conn.execute(insert, (f"step {self._n}",))
            self.autocommit_ms.append((time.perf_counter() - started) * 1000)

    def close(self) -> None:
        self.conn.close()
