"""The inbox live: new escalations appear in every watching inbox (respecting its filter),
and after a dropped websocket the page reconnects and catches up — nothing missed, nothing
twice."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .console_helpers import (
    assert_not_reloaded,
    escalation_of,
    mark_page,
    row_ids,
    start_run,
)

pytestmark = pytest.mark.browser

COUNT_SOCKET_EVENTS = """
window.__ws = {open: 0, close: 0};
document.body.addEventListener('htmx:wsOpen', () => window.__ws.open++);
document.body.addEventListener('htmx:wsClose', () => window.__ws.close++);
"""


def wait_until(page, expression: str, timeout_ms: int) -> None:
    """Poll ``expression`` from outside the page: ``wait_for_function`` evaluates it inside,
    with eval, which the Content-Security-Policy forbids."""
    for _ in range(timeout_ms // 100):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{expression} not true within {timeout_ms} ms")


def test_an_escalation_appears_live_in_each_filtered_inbox(login, started):
    approvals = login("operator").pages[0]
    approvals.goto("/inbox/?reason=approval_required")
    everything = login("admin").pages[0]
    for page in (approvals, everything):
        expect(page.get_by_test_id("inbox-results")).to_be_visible()
        mark_page(page)

    starter = approvals.context.new_page()
    question = escalation_of(starter, start_run(starter, "I want my money back", started))
    approval = escalation_of(starter, start_run(starter, "I want a refund for order 1042", started))

    expect(everything.locator(f"#esc-{question}")).to_have_count(1, timeout=15_000)
    expect(everything.locator(f"#esc-{approval}")).to_have_count(1, timeout=15_000)
    expect(approvals.locator(f"#esc-{approval}")).to_have_count(1, timeout=15_000)
    expect(approvals.locator(f"#esc-{question}")).to_have_count(0)  # not its filter
    for page in (approvals, everything):
        assert_not_reloaded(page)
        ids = row_ids(page)
        assert len(ids) == len(set(ids))

    # a claim shows up live for the other operator too
    approvals.locator(f"#esc-{approval}").get_by_test_id("claim").click()
    expect(everything.locator(f"#esc-{approval}")).to_contain_text("Claimed by operator")


class Network:
    """The inbox's websocket, relayed through Playwright so the test can cut it: while
    "down", open sockets are dropped (1012, as by a server restart) and new ones refused
    (1013, try again later) — the codes after which htmx's ws extension reconnects."""

    def __init__(self, context) -> None:
        self.context = context
        self.down = False
        self.live: list = []
        context.route_web_socket(re.compile(r"/ws/inbox/$"), self.relay)

    def relay(self, ws) -> None:
        if self.down:
            ws.close(code=1013, reason="offline")
            return
        server = ws.connect_to_server()
        self.live.append((ws, server))

    def drop(self) -> None:
        self.down = True
        self.context.set_offline(True)
        for ws, server in self.live:
            server.close()
            ws.close(code=1012, reason="dropped")
        self.live.clear()

    def restore(self) -> None:
        self.context.set_offline(False)
        self.down = False


def test_after_a_dropped_websocket_the_inbox_catches_up_once(login, started):
    context = login("operator")
    network = Network(context)
    inbox = context.pages[0]
    inbox.goto("/inbox/")  # its socket now goes through the relay
    inbox.evaluate(COUNT_SOCKET_EVENTS)
    expect(inbox.get_by_test_id("inbox-results")).to_be_visible()
    inbox.wait_for_timeout(500)
    mark_page(inbox)
    opened = inbox.evaluate("window.__ws.open")

    network.drop()
    wait_until(inbox, "window.__ws.close >= 1", 15_000)

    other = login("admin").pages[0]  # another operator, online, raises a new escalation
    esc = escalation_of(other, start_run(other, "I want a refund for order 1042", started))
    inbox.wait_for_timeout(500)
    expect(inbox.locator(f"#esc-{esc}")).to_have_count(0)  # missed while offline

    network.restore()
    wait_until(inbox, f"window.__ws.open > {opened}", 30_000)
    expect(inbox.locator(f"#esc-{esc}")).to_have_count(1, timeout=15_000)
    inbox.wait_for_timeout(2_500)  # the second catch-up read, 2 s after the reconnect
    ids = row_ids(inbox)
    assert ids.count(esc) == 1 and len(ids) == len(set(ids))
    assert_not_reloaded(inbox)
