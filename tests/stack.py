"""A local AgentDesk deployment in subprocesses, for browser tests, chaos tests and bench.

On the embedded default it is ``manage.py run_embedded`` (one process). With ``REDIS_URL``
set it is the production topology on a fresh Postgres database: the simulator, N
``celery -A agentdesk worker`` processes, celery beat and uvicorn — each a real process
that a test can kill with SIGKILL and start again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


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
    """Drop and create database ``name`` on the server of ``url``; return its URL."""
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parsed._replace(path=f"/{name}"))


def production_mode() -> bool:
    return bool(os.environ.get("REDIS_URL")) and bool(os.environ.get("DATABASE_URL"))


@dataclass
class Stack:
    """Processes of one deployment. ``start()`` migrates, seeds, and starts them."""

    workdir: Path
    name: str
    workers: int = 1
    worker_args: list[str] = field(default_factory=lambda: ["-c", "2"])
    web: bool = True
    web_args: list[str] = field(default_factory=list)  # e.g. uvicorn's ["--workers", "2"]
    beat: bool = False
    latency_scale: float = 0.5
    extra_env: dict[str, str] = field(default_factory=dict)
    password: str = "stack-pass-123"
    port: int = 0
    sim_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return production_mode()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        self.port, self.sim_port = self.port or free_port(), self.sim_port or free_port()
        env = {
            **os.environ,
            "AGENTDESK_DATA_DIR": str(self.workdir),
            "AGENTDESK_DEMO_PASSWORD": self.password,
            "LLMSIM_PORT": str(self.sim_port),
            "LLMSIM_LATENCY_SCALE": str(self.latency_scale),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        if self.production:
            # a deployment's processes share one key, which must be set (agentdesk.secret_key);
            # they serve plain HTTP on this machine (the topology is HTTPS-only by default)
            env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
            env.setdefault("DJANGO_SECURE", "false")
            env["DATABASE_URL"] = fresh_postgres(os.environ["DATABASE_URL"], self.name)
            env["CELERY_QUEUE"] = self.name
            env["CHANNELS_PREFIX"] = self.name
            env["CACHE_PREFIX"] = self.name
        else:
            env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'app.sqlite3'}"
        return env

    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = self._environment()
        for cmd in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
            subprocess.run([PY, "manage.py", *cmd], cwd=ROOT, env=self.env, check=True,
                           stdout=subprocess.DEVNULL)
        if not self.production:
            self._spawn("web", [PY, "manage.py", "run_embedded", "--port", str(self.port),
                                *self.web_args])
            wait_http(f"{self.base_url}/healthz")
            return self
        self._spawn("llmsim", [PY, "-m", "agentdesk.llmsim", "--port", str(self.sim_port)])
        for i in range(self.workers):
            self.start_worker(i)
        if self.beat:
            self._spawn("beat", [PY, "-m", "celery", "-A", "agentdesk", "beat", "-l", "warning",
                                 "-s", str(self.workdir / "beat-schedule")])
        if self.web:
            self._spawn("web", [PY, "-m", "uvicorn", "agentdesk.asgi:application",
                                "--port", str(self.port), "--log-level", "warning",
                                *self.web_args])
            wait_http(f"{self.base_url}/healthz")
        wait_http(f"http://127.0.0.1:{self.sim_port}/healthz")
        return self

    def start_worker(self, i: int) -> None:
        self._spawn(f"worker{i}", [
            PY, "-m", "celery", "-A", "agentdesk", "worker", "-Q", self.env["CELERY_QUEUE"],
            "-n", f"{self.name}-w{i}@%h", "-l", "warning", *self.worker_args,
        ])

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children (a prefork pool dies with its parent)."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("a")
        self.procs[name] = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 3000) -> str:
        return "".join(
            f"--- {p.name}\n{p.read_text()[-chars:]}\n" for p in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(name)
        self.procs.clear()
