"""Structured logging: every line is JSON (or readable key=value on a terminal) and carries
the context bound with ``structlog.contextvars`` — run id, team and step inside a worker."""

from __future__ import annotations

from typing import Any

import structlog

SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """Configure structlog and return Django's LOGGING dict routing stdlib logs through it."""
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.channels.server": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            # requests (apprise's notifications) logs each URL at DEBUG, tokens in the path
            # included (runs.notifier): never below WARNING
            "urllib3": {"level": "WARNING"},
            "httpx2": {"level": "WARNING"},
            "mcp.client": {"level": "WARNING"},  # two INFO lines per MCP session
            "axes": {"level": "WARNING"},  # an INFO line per start and per login
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
        },
    }
