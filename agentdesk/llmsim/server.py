"""Running the simulator with uvicorn in a background thread (tests, the embedded runner)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from .app import SimApp, create_app

GRACEFUL_SHUTDOWN_S = 2.0
"""In-flight calls (e.g. a stalled ``timeout`` fault) are cancelled after this on stop()."""


@dataclass
class SimServer:
    """A running simulator. Point the OpenAI client at ``base_url``; call ``stop()`` when done."""

    host: str
    port: int
    app: SimApp
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def root_url(self) -> str:
        """``http://host:port`` — where ``/healthz`` lives."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` — the OpenAI client's ``base_url``."""
        return f"{self.root_url}/v1"

    @property
    def is_running(self) -> bool:
        """True until uvicorn's thread has finished."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Answer stalled calls with 503, ask uvicorn to exit, wait for its thread; idempotent."""
        self.app.close()
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_thread(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    latency_scale: float | None = None,
    fault_timeout_s: float | None = None,
    small_confident_error_rate: float | None = None,
    startup_timeout_s: float = 10.0,
) -> SimServer:
    """Serve a fresh simulator on ``host:port`` (0 = any free port) from a daemon thread.

    ``latency_scale`` multiplies each tier's base latency (0 = instant; default from
    ``LLMSIM_LATENCY_SCALE``, else 1.0). ``fault_timeout_s`` is how long a ``timeout``
    fault stalls (default from ``LLMSIM_FAULT_TIMEOUT_SECONDS``, else 30 s).
    ``small_confident_error_rate``: the share of hard tasks sim-small is confidently wrong
    on (default from ``LLMSIM_SMALL_CONFIDENT_ERROR_RATE``, else 0.10; see ``error_model``).
    """
    app = create_app(latency_scale=latency_scale, fault_timeout_s=fault_timeout_s,
                     small_confident_error_rate=small_confident_error_rate)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"llmsim-{host}:{port}", daemon=True)
    thread.start()

    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"llmsim failed to start on {host}:{port} (see log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"llmsim did not start within {startup_timeout_s} s")
        time.sleep(0.01)

    bound_port = server.servers[0].sockets[0].getsockname()[1]
    return SimServer(host=host, port=bound_port, app=app, _server=server, _thread=thread)
