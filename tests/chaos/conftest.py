"""Chaos tests: a real deployment (Postgres, Redis, Celery worker processes) under SIGKILL."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "chaos: kills worker processes of a real deployment (needs Postgres + Redis)"
    )
