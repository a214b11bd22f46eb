"""Browser tests against the real app, started as a user (or an operator) would start it.

On the embedded default the server is ``manage.py run_embedded`` (one process: ASGI,
worker thread, simulator); with ``REDIS_URL`` set it is the production topology: uvicorn,
a separate ``celery -A agentdesk worker`` and the simulator, on a fresh Postgres database.
Chromium is Debian's, driven by Playwright.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack

PASSWORD = "browser-pass-123"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory) -> Iterator[Stack]:
    """The running app's processes (``stack.env`` reaches its database, e.g. to seed)."""
    stack = Stack(workdir=tmp_path_factory.mktemp("browser-app"),
                  name=f"agentdesk_browser_{os.getpid()}", password=PASSWORD)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if os.environ.get("CI"):
            sys.stdout.write(stack.log_tail())


@pytest.fixture(scope="session")
def live_app(live_stack) -> str:
    return live_stack.base_url


def own_app(name: str):
    """Module fixtures ``stack`` and ``live_app`` for a module that needs an app of its own
    (a fresh database: its counts and pages see only its own data); the ``login`` fixture
    logs in there. Use: ``stack, live_app = own_app("bulk")``."""

    @pytest.fixture(scope="module")
    def stack(tmp_path_factory) -> Iterator[Stack]:
        own = Stack(workdir=tmp_path_factory.mktemp(f"{name}-app"),
                    name=f"agentdesk_{name}_{os.getpid()}", password=PASSWORD)
        try:
            yield own.start()
        finally:
            own.stop()

    @pytest.fixture(scope="module")
    def live_app(stack) -> str:
        return stack.base_url

    return stack, live_app


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


TERMINAL = re.compile("succeeded|failed|aborted")


@pytest.fixture
def started(login) -> Iterator[list[int]]:
    """Run ids a test starts; afterwards every one still going is cancelled, so the next
    test (on the same app) starts from an inbox without them."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    runs: list[int] = []
    yield runs
    page = login("admin").new_page()
    for run_id in runs:
        page.goto(f"/runs/{run_id}/")
        if page.get_by_test_id("cancel-run").is_visible():
            try:
                page.get_by_test_id("cancel-run").click(timeout=5000)
            except PlaywrightTimeout:  # it ended meanwhile: the live summary hid the button
                expect(page.get_by_test_id("run-status")).to_have_text(TERMINAL)
                continue
            page.get_by_test_id("confirm-ok").click()  # cancelling asks first
            expect(page.get_by_test_id("run-actions")).to_contain_text("nothing to cancel")
