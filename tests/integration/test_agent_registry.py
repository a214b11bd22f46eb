"""Agents as installable packages: found from the ``AGENTDESK_AGENTS`` paths and the
``agentdesk.agents`` entry-point group; a broken source is a system check error; admin
says whether each Agent row's code is installed; a row without code is refused with
``agent_not_installed`` (form and API), and a queued run whose agent went away ends with
that reason and a final step naming the agent."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from agentdesk.agents import AGENTS, get_agent
from agentdesk.agents.registry import Registry, discover
from runs import execution
from runs.api_keys import create_api_key
from runs.models import Agent, Run
from tests.api.conftest import ApiClient

from .helpers import submit

SHIPPED = "agentdesk.agents.support_refunds.agent:AGENT"
EXTRA_SLUG = "extra-helper"

AGENT_MODULE = """
from agentdesk.agents.support_refunds.agent import AGENT as _BASE
from agentdesk.runtime.agent import AgentSpec

AGENT = AgentSpec(slug={slug!r}, name="Extra", instructions="Help.",
                  input_model=_BASE.input_model, tools=_BASE.tools)
NOT_AN_AGENT = 42
"""


@pytest.fixture
def agent_module(tmp_path, monkeypatch):
    """An importable module ``extra_agents`` with an AgentSpec ``AGENT`` (slug extra-helper)."""

    def make(slug: str = EXTRA_SLUG, name: str = "extra_agents") -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(AGENT_MODULE.format(slug=slug)))
        monkeypatch.delitem(sys.modules, name, raising=False)  # an earlier test's version
        importlib.invalidate_caches()
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


@pytest.fixture
def installed_package(tmp_path, agent_module):
    """A fake installed distribution declaring ``[agentdesk.agents] extra = extra_agents:AGENT``
    (a ``.dist-info`` on sys.path, as ``pip install`` leaves one)."""

    def install(value: str = "extra_agents:AGENT", slug: str = EXTRA_SLUG) -> None:
        agent_module(slug)
        info = tmp_path / "extra_agents-1.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-agents\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[agentdesk.agents]\nextra = {value}\n")

    return install


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test discovers again, and leaves the process's registry as settings say."""
    yield
    from django.conf import settings

    AGENTS.configure(settings.AGENTDESK_AGENTS)


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Runs stay queued; the test advances them itself."""
    monkeypatch.setattr("runs.enqueue.advance_run", lambda *args, **kwargs: None)


def test_the_shipped_agent_comes_from_the_default_setting():
    assert get_agent("support-refunds") is not None
    assert AGENTS.source_of("support-refunds") == f"AGENTDESK_AGENTS path {SHIPPED!r}"
    assert Registry(()).get("support-refunds") is None  # no path, no entry point: not found


def test_setting_paths_add_agents(agent_module):
    agent_module()
    with override_settings(AGENTDESK_AGENTS=[SHIPPED, "extra_agents:AGENT"]):
        assert sorted(AGENTS) == [EXTRA_SLUG, "support-refunds"]
        assert get_agent(EXTRA_SLUG).name == "Extra"
        assert run_checks() == []
    assert get_agent(EXTRA_SLUG) is None  # the override ended: back to the default path


def test_installed_packages_add_agents_through_entry_points(installed_package):
    assert get_agent(EXTRA_SLUG) is None
    installed_package()
    assert get_agent(EXTRA_SLUG) is None  # cached: discovered once, before the install
    AGENTS.configure([SHIPPED])
    assert get_agent(EXTRA_SLUG).name == "Extra"
    assert "entry point 'extra'" in AGENTS.source_of(EXTRA_SLUG)
    assert "'extra-agents'" in AGENTS.source_of(EXTRA_SLUG)
    # the same object named by a path too is not a duplicate
    assert discover([SHIPPED, "extra_agents:AGENT"]).problems == ()


def test_a_duplicate_slug_is_an_error_naming_both_sources(installed_package):
    installed_package(slug="support-refunds")
    loaded = discover([SHIPPED])
    assert loaded.agents["support-refunds"].name == "Support: refunds"  # the first one stays
    [problem] = loaded.problems
    assert "'support-refunds'" in problem.message
    assert f"AGENTDESK_AGENTS path {SHIPPED!r}" in problem.message
    assert "entry point 'extra'" in problem.message
    errors = run_checks()
    assert [e.id for e in errors] == ["agentdesk.E001"]


@pytest.mark.parametrize(("path", "says"), [
    ("no_such_module:AGENT", "module 'no_such_module' does not import"),
    ("agentdesk.agents.support_refunds.agent:NOPE", "has no attribute 'NOPE'"),
    ("agentdesk.agents.support_refunds.agent:MAX_MESSAGE_CHARS", "not an AgentSpec"),
    ("just_a_module", "not a 'module:attribute' path"),
])
def test_a_broken_path_is_a_system_check_error_naming_it(path, says):
    with override_settings(AGENTDESK_AGENTS=[SHIPPED, path]):
        [error] = run_checks()
        assert error.id == "agentdesk.E001" and error.level >= 40
        assert repr(path) in error.msg and says in error.msg
        assert error.hint
        with pytest.raises(SystemCheckError, match="agentdesk.E001"):
            call_command("check")
        assert get_agent("support-refunds") is not None  # the good path still works


def test_a_broken_entry_point_is_a_system_check_error(installed_package):
    installed_package(value="extra_agents:MISSING")
    [error] = run_checks()
    assert "entry point 'extra'" in error.msg and "MISSING" in error.msg


def _orphan(demo) -> Agent:
    """An Agent row (as made in admin) whose slug no installed code provides."""
    shipped = Agent.objects.get(team=demo["team"], slug="support-refunds")
    return Agent.objects.create(team=demo["team"], slug="orphan", name="Orphan",
                                policy=shipped.policy)


def test_admin_says_whether_each_agent_is_installed(demo):
    orphan = _orphan(demo)
    admin = Client()
    admin.force_login(demo["admin"])
    listing = admin.get("/admin/runs/agent/").content.decode()
    assert "installed" in listing
    assert "not installed — add its package or AGENTDESK_AGENTS" in listing
    page = admin.get(f"/admin/runs/agent/{orphan.pk}/change/").content.decode()
    assert "not installed — add its package or AGENTDESK_AGENTS" in page
    shipped = Agent.objects.get(team=demo["team"], slug="support-refunds")
    page = admin.get(f"/admin/runs/agent/{shipped.pk}/change/").content.decode()
    assert "not installed" not in page


def test_submitting_to_an_agent_without_code_is_422_by_form_and_api(demo):
    orphan = _orphan(demo)
    console = Client()
    console.force_login(demo["operator"])
    page = console.post("/runs/new/", {"agent": orphan.pk, "message": "Hello"})
    assert page.status_code == 422
    assert "has no implementation installed" in page.content.decode()

    api = ApiClient(create_api_key(team=demo["team"], name="test").raw)
    answer = api.post("/runs", {"agent": "orphan", "input": {"message": "Hello"}})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "agent_not_installed"
    assert "AGENTDESK_AGENTS" in answer.json()["error"]["message"]
    assert not Run.objects.filter(agent=orphan).exists()


def test_a_queued_run_whose_agent_went_away_fails_agent_not_installed(demo, agent_module,
                                                                      monkeypatch):
    from runs import enqueue

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)  # advanced by hand
    agent_module()
    shipped = Agent.objects.get(team=demo["team"], slug="support-refunds")
    Agent.objects.create(team=demo["team"], slug=EXTRA_SLUG, name="Extra", policy=shipped.policy)
    with override_settings(AGENTDESK_AGENTS=[SHIPPED, "extra_agents:AGENT"]):
        run = submit(demo["team"], demo["operator"], "Hello", agent=EXTRA_SLUG)
    assert run.status == "queued" and get_agent(EXTRA_SLUG) is None  # uninstalled since

    assert execution.advance(run.pk) == execution.DONE
    run.refresh_from_db()
    assert (run.status, run.reason) == ("failed", "agent_not_installed")
    assert not run.lease_owner
    [final] = run.steps.all()
    assert final.kind == "final"
    assert f"agent {EXTRA_SLUG!r} is not installed" in final.error
