"""llmsim: a deterministic OpenAI-compatible chat completions server for tests and demos.

The app talks to it only through the ``openai`` client over HTTP, exactly as it talks to
OpenAI. Start one with :func:`start_in_thread` or ``python -m agentdesk.llmsim``.
"""

from __future__ import annotations

from .app import SimApp, SimSettings, create_app
from .faults import FaultKind
from .models import MODELS, Prices, Quality, SimModel, get_model, get_prices, price_table
from .modes import Mode
from .server import SimServer, start_in_thread

__all__ = [
    "MODELS",
    "FaultKind",
    "Mode",
    "Prices",
    "Quality",
    "SimApp",
    "SimModel",
    "SimServer",
    "SimSettings",
    "create_app",
    "get_model",
    "get_prices",
    "price_table",
    "start_in_thread",
]
