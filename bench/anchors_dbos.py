"""Anchor: DBOS durable workflows of no-op steps, on the bench's Postgres.

DBOS Transact (the ``bench`` extra) checkpoints every step of a workflow in its system
database: the step's output is written (one durable commit) before the workflow goes on,
and the workflow's status row when it starts and ends. A workflow here runs ``steps``
no-op steps (``noop(i)`` returns ``i``); a step's time is the wall time of the call to the
decorated step, which is all DBOS does for it (look up a recorded output, run the body,
record its output). The workflow's start and end, amortised over its steps, are reported
beside it.

The system database is a fresh Postgres database of its own on the bench's server, created
and dropped the way every benchmark's database is (``tests.stack.fresh_postgres``,
``bench.deploy.tidy``); DBOS creates its tables there on launch. The anchor runs in the
process of the benchmark it anchors, between that benchmark's blocks of work
(``bench.overhead``), so both see the same machine at the same moments.
"""

from __future__ import annotations

import os
import time
from importlib import metadata

SYSTEM_DB = "agentdesk_bench_anchor_dbos_sys"


class DbosAnchor:
    """DBOS launched on a fresh system database; ``sample`` runs one workflow."""

    def __init__(self, admin_url: str) -> None:
        from dbos import DBOS

        from tests.stack import fresh_postgres

        self.url = fresh_postgres(admin_url, SYSTEM_DB).replace("postgres://",
                                                               "postgresql://", 1)
        self.step_ms: list[float] = []
        self.workflow_ms_per_step: list[float] = []
        self.steps = 0
        _register()
        DBOS(config={"name": "agentdesk-bench-anchor", "system_database_url": self.url,
                     "log_level": "WARNING", "executor_id": f"bench-{os.getpid()}"})
        DBOS.launch()
        self.size_before = self._size()

    def sample(self, steps: int) -> None:
        """One workflow of ``steps`` no-op steps; per-step times are appended."""
        _TIMES.clear()
        started = time.perf_counter()
        _WORKFLOW(steps)
        elapsed = (time.perf_counter() - started) * 1000
        self.step_ms.extend(_TIMES)
        self.workflow_ms_per_step.append(elapsed / steps)
        self.steps += steps

    def bytes_per_step(self) -> float:
        return (self._size() - self.size_before) / max(self.steps, 1)

    def _size(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return int(conn.execute("SELECT pg_database_size(current_database())")
                       .fetchone()[0])

    def close(self) -> None:
        from dbos import DBOS

        from . import deploy

        DBOS.destroy()
        deploy.tidy_database(self.url)


def version() -> str:
    return metadata.version("dbos")


_WORKFLOW = None
_TIMES: list[float] = []  # the running workflow's step times (kept out of its recorded output)


def _register() -> None:
    """The step and the workflow, registered with DBOS once per process (before launch)."""
    global _WORKFLOW
    if _WORKFLOW is not None:
        return
    from dbos import DBOS

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def loop(steps: int) -> int:
        for i in range(steps):
            started = time.perf_counter()
            noop(i)
            _TIMES.append((time.perf_counter() - started) * 1000)
        return steps

    _WORKFLOW = loop
