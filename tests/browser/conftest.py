"""Browser tests against the real app, started as a user (or an operator) would start it.

On the embedded default the server is ``manage.py run_embedded`` (one process: ASGI,
worker thread, simulator); with ``REDIS_URL`` set it is the production topology: uvicorn,
a separate ``celery -A agentdesk worker`` and the simulator, on a fresh Postgres database.
Chromium is Debian's, driven by Playwright.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "browser-pass-123"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def fresh_postgres(url: str, name: str) -> str:
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parsed._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def live_app(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser-app")
    port, sim_port = free_port(), free_port()
    env = {
        **os.environ,
        "AGENTDESK_DATA_DIR": str(tmp),
        "AGENTDESK_DEMO_PASSWORD": PASSWORD,
        "LLMSIM_PORT": str(sim_port),
        "LLMSIM_LATENCY_SCALE": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    production = bool(os.environ.get("REDIS_URL"))
    if production:
        env["DATABASE_URL"] = fresh_postgres(os.environ["DATABASE_URL"],
                                             f"agentdesk_browser_{os.getpid()}")
        env["CELERY_QUEUE"] = f"browser-{os.getpid()}"
        env["CHANNELS_PREFIX"] = f"browser{os.getpid()}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'app.sqlite3'}"
    py = sys.executable
    log = (tmp / "server.log").open("w")
    for cmd in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
        subprocess.run([py, "manage.py", *cmd], cwd=ROOT, env=env, check=True, stdout=log)
    if production:
        commands = [
            [py, "-m", "agentdesk.llmsim", "--port", str(sim_port)],
            [py, "-m", "celery", "-A", "agentdesk", "worker", "-Q", env["CELERY_QUEUE"],
             "-c", "2", "-l", "warning"],
            [py, "-m", "uvicorn", "agentdesk.asgi:application", "--port", str(port),
             "--log-level", "warning"],
        ]
    else:
        commands = [[py, "manage.py", "run_embedded", "--port", str(port)]]
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
             for c in commands]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz")
        yield base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if os.environ.get("CI"):
            sys.stdout.write((tmp / "server.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def login(live_app, chromium):
    """``login("operator")`` → a logged-in browser context."""
    contexts = []

    def _login(username: str):
        context = chromium.new_context(base_url=live_app, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url("**/inbox/")
        contexts.append(context)
        return context

    yield _login
    for context in contexts:
        context.close()
