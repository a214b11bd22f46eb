"""``manage.py startagent``, and the README's "Write your own agent" followed literally.

The walkthrough: scaffold a package → ``pip install -e`` it → its own tests pass → ``make
run``'s steps (migrate, seed_demo, run_embedded) → submit through the REST API → the run
settles, with an approval given through the API when the policy asks for one.

The package is installed into an ISOLATED virtualenv made for the test: it sees this
repository and the main environment's packages through a ``.pth`` file, but what pip
installs goes into the throwaway venv, so the main ``.venv`` never gains the test's agent.
Everything runs in subprocesses on a temporary SQLite database and data folder (on both CI
passes: the point is the user's path, not the production topology).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agentdesk.agents import scaffold
from tests.stack import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
NAME = "helpdesk-bot"  # a dash, so the slug (helpdesk-bot) and package (helpdesk_bot) differ
SLUG, PACKAGE = "helpdesk-bot", "helpdesk_bot"
SETTLE_S = 90.0


# -- the command's errors and output (no subprocess) ---------------------------------------


@pytest.mark.parametrize("name", ["Helpdesk", "1bot", "help desk", "bot-", "x" * 51, "bot.py"])
def test_a_name_that_is_not_slug_like_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CommandError, match="is not a valid agent name: use lower-case"):
        call_command("startagent", name, directory=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["class", "import", "lambda"])
def test_a_python_keyword_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CommandError, match="is a Python keyword"):
        call_command("startagent", name, directory=str(tmp_path))


@pytest.mark.parametrize("name", ["json", "runs", "agentdesk"])
def test_a_name_that_would_shadow_a_module_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CommandError, match="already an importable Python module"):
        call_command("startagent", name, directory=str(tmp_path))


def test_an_installed_agents_slug_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="already has the slug 'support-refunds'"):
        call_command("startagent", "support-refunds", directory=str(tmp_path))


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "helpdesk").mkdir()
    (tmp_path / "helpdesk" / "mine.txt").write_text("keep me")
    with pytest.raises(CommandError, match="already exists; choose another name"):
        call_command("startagent", "helpdesk", directory=str(tmp_path))
    assert (tmp_path / "helpdesk" / "mine.txt").read_text() == "keep me"


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not an existing directory"):
        call_command("startagent", "helpdesk", directory=str(tmp_path / "nope"))


def test_a_failure_half_way_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    def broken(text: str, values: dict[str, str]) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(scaffold, "render", broken)
    with pytest.raises(OSError, match="disk full"):
        scaffold.create("helpdesk", tmp_path)
    assert not (tmp_path / "helpdesk").exists()


def test_the_scaffold_is_an_installable_package(tmp_path: Path, capsys) -> None:
    call_command("startagent", NAME, directory=str(tmp_path))
    project = tmp_path / NAME
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert files == [
        "README.md", f"{PACKAGE}/__init__.py", f"{PACKAGE}/agent.py",
        f"{PACKAGE}/knowledge/getting-started.md", f"{PACKAGE}/knowledge/priorities.md",
        f"{PACKAGE}/tools.py", "pyproject.toml", "tests/test_agent.py",
    ]
    assert not [f for f in files if "{{" in (project / f).read_text()]
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    assert meta["project"]["name"] == NAME
    assert meta["project"]["entry-points"]["agentdesk.agents"] == {
        SLUG: f"{PACKAGE}.agent:AGENT"}
    assert meta["tool"]["setuptools"]["package-data"][PACKAGE] == [
        "knowledge/*.md", "knowledge/*.txt", "knowledge/*.html"]
    assert f'slug="{SLUG}"' in (project / PACKAGE / "agent.py").read_text()
    out = capsys.readouterr().out
    assert f"Created agent '{SLUG}'" in out and f"pip install -e {project}" in out


# -- the README, literally (subprocesses) --------------------------------------------------


def run(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def isolated_venv(where: Path) -> str:
    """A new venv whose ``.pth`` makes this repository and the main environment's packages
    importable; pip (from the main environment) installs into the new one."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = str(where / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    main_site = sysconfig.get_paths()["purelib"]
    Path(site.stdout.strip(), "agentdesk-main.pth").write_text(f"{main_site}\n{ROOT}\n")
    return python


def can_build_without_isolation(python: str) -> bool:
    """The setuptools the venv reaches builds the package's wheel itself (≥ 70.1, or older
    with the ``wheel`` package); otherwise pip builds it in isolation, as for any user."""
    probe = ("import importlib.util, setuptools; v = tuple(int(p) for p in "
             "setuptools.__version__.split('.')[:2]); "
             "print(v >= (70, 1) or importlib.util.find_spec('wheel') is not None)")
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    assert found.returncode == 0, f"setuptools is not reachable from the venv: {found.stderr}"
    return found.stdout.strip() == "True"


def app_env(data: Path) -> dict[str, str]:
    """``make run``'s environment on a fresh SQLite database and data folder, with the
    bundled simulator (no OPENAI_API_KEY) on a free port."""
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AGENTDESK_DATA_DIR": str(data),
           "DATABASE_URL": f"sqlite:///{data / 'app.sqlite3'}",
           "LLMSIM_PORT": str(free_port()), "LLMSIM_LATENCY_SCALE": "0",
           "AGENTDESK_DEMO_PASSWORD": "readme-pass-123", "PYTHONUNBUFFERED": "1"}
    for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                 "AGENTDESK_AGENTS", "CELERY_QUEUE", "CHANNELS_PREFIX", "CACHE_PREFIX"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def embedded_server(python: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``manage.py run_embedded`` (what ``make run`` starts), stopped by its own pid."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([python, "manage.py", "run_embedded", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def api(base: str, key: str, method: str, path: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def settle(base: str, key: str, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the run until it ends; approve each escalation on the way, as an operator would.
    Returns the run (with its steps) and the escalations that were approved."""
    approved: list[dict[str, Any]] = []
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        found = api(base, key, "GET", f"/runs/{run_id}?include=steps")
        if found["status"] in ("succeeded", "failed", "aborted"):
            return found, approved
        if found["status"] == "waiting_human" and found["escalation_id"]:
            escalation = next(e for e in api(base, key, "GET", "/escalations")["items"]
                              if e["id"] == found["escalation_id"])
            api(base, key, "POST", f"/escalations/{escalation['id']}/resolve",
                {"action": "approve"})
            approved.append(escalation)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not settle within {SETTLE_S}s: {found}")


# The README's admin steps, as the ORM does them (admin → Agents, admin → Policies).
CONFIGURE = f"""
from runs.models import Agent, Policy
row = Agent.objects.get(team__slug="demo", slug="{SLUG}")  # seed_demo added it
policy = row.policy
policy.approval_tools = ["create_ticket"]  # "Tools that always need approval"
policy.full_clean()
policy.save()
print(row.name, policy.name)
"""


def test_the_readme_walkthrough_runs_a_scaffolded_agent_to_success(tmp_path: Path) -> None:
    python = isolated_venv(tmp_path / "venv")
    env = app_env(tmp_path / "data")

    # 1. scaffold, 2. pip install -e, 3. the package's own tests
    run([python, "manage.py", "startagent", NAME, "--directory", str(tmp_path)],
        cwd=ROOT, env=env)
    project = tmp_path / NAME
    isolation = ["--no-build-isolation"] if can_build_without_isolation(python) else []
    run([python, "-m", "pip", "install", "--no-deps", *isolation, "-e", str(project)],
        cwd=tmp_path, env=env)
    tests = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                env={**env, "AGENTDESK_DATA_DIR": str(tmp_path / "package-tests")})
    assert " passed" in tests and "failed" not in tests
    # the main environment did not gain the agent
    main = subprocess.run([sys.executable, "-c", f"import {PACKAGE}"], capture_output=True)
    assert main.returncode != 0

    # 4. make run: migrate, seed_demo (adds the Agent row), then the admin's policy step
    run([python, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env)
    run([python, "manage.py", "seed_demo"], cwd=ROOT, env=env)
    assert "Helpdesk bot support-default" in run(
        [python, "manage.py", "shell", "-c", CONFIGURE], cwd=ROOT, env=env)
    key = run([python, "manage.py", "create_api_key", "--team", "demo", "--name", "readme"],
              cwd=ROOT, env=env).strip()

    with embedded_server(python, env, tmp_path / "server.log") as base:
        # the installed package's agent is the team's, with its input schema
        [agent] = [a for a in api(base, key, "GET", "/agents")["items"] if a["slug"] == SLUG]
        assert agent["input_schema"]["required"] == ["message"]

        # a read-only lookup: the simulator's generic brain calls lookup_ticket, then answers
        lookup = api(base, key, "POST", "/runs", {
            "agent": SLUG, "input": {"message": "What is the status of ticket 2?"}})
        done, approved = settle(base, key, lookup["id"])
        assert done["status"] == "succeeded", (done, (tmp_path / "server.log").read_text())
        tools = [(s["name"], s["args"]) for s in done["steps"] if s["kind"] == "tool"]
        assert tools == [("lookup_ticket", {"ticket_id": 2})], (
            "the simulator's generic brain should call the agent's tool: it reads the offered "
            f"tools from Conversation.tools; answer {done['answer']!r}")
        assert "in_progress" in done["answer"]

        # a side effect: the policy wants approval, an operator approves through the API
        create = api(base, key, "POST", "/runs", {
            "agent": SLUG,
            "input": {"message": "Open a ticket: the meeting room screen stays black"}})
        done, approved = settle(base, key, create["id"])
        assert done["status"] == "succeeded", (done, (tmp_path / "server.log").read_text())
        assert [(e["reason"], e["proposed_tool"]) for e in approved][:1] == [
            ("approval_required", "create_ticket")]
        retrieval = next(s for s in done["steps"] if s["kind"] == "retrieval")
        assert "getting-started.md" in retrieval["result"]["documents"]

    # the ticket exists once, under the run's idempotency key
    created = (tmp_path / "data" / f"{PACKAGE}-tickets.jsonl").read_text().splitlines()
    [ticket] = [json.loads(line) for line in created]
    assert ticket["idempotency_key"].startswith(f"{create['id']}:")
    assert ticket["title"] == "Open a ticket: the meeting room screen stays black"
