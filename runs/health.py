"""Health checks for ``/healthz``: the database answers and the broker accepts a connection."""

from __future__ import annotations

from typing import Any

from django.db import connection

from agentdesk.celery import app as celery_app


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_broker() -> dict[str, Any]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
        return {"ok": True, "transport": str(transport)}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_all() -> dict[str, dict[str, Any]]:
    return {"database": check_database(), "broker": check_broker()}
