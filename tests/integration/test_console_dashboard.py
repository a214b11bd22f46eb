"""The dashboard renders its aggregates as inline SVG; the charts themselves."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from runs import charts, services, stats
from runs.models import AuditEvent, Run, Step

from .console_data import client_for, escalation, waiting_run
from .console_data import no_resume as no_resume  # a fixture

pytestmark = pytest.mark.usefixtures("no_resume")


def seed(demo) -> None:
    team = demo["team"]
    for status, cost, tiers in (("succeeded", "0.0120", ["small", "small"]),
                                ("succeeded", "0.0300", ["small", "large"]),
                                ("failed", "0.0010", ["small"])):
        run = waiting_run(team)
        Run.objects.filter(pk=run.pk).update(status=status, reason="", cost_usd=Decimal(cost))
        for i, tier in enumerate(tiers):
            Step.objects.create(run=run, index=i, kind="model", tier=tier, model=f"sim-{tier}")
    yesterday = timezone.now() - timedelta(days=1)
    Run.objects.filter(pk=run.pk).update(created_at=yesterday)
    Step.objects.filter(run=run).update(created_at=yesterday)
    fast, slow, edited = (escalation(team, reason=r) for r in
                          ("approval_required", "low_confidence", "approval_required"))
    services.decide(escalation_id=fast.pk, user=demo["operator"], decision="approve")
    services.decide(escalation_id=slow.pk, user=demo["operator"], decision="reject")
    services.decide(escalation_id=edited.pk, user=demo["admin"], decision="approve",
                    args={"order_id": "1042", "amount": 10, "reason": "partial"})
    AuditEvent.objects.filter(target_id=str(slow.pk)).update(
        detail={"decision": "reject", "seconds_to_decision": 100.0})
    AuditEvent.objects.filter(target_id=str(fast.pk)).update(
        detail={"decision": "approve", "seconds_to_decision": 20.0, "edited": False})
    escalation(team, reason="tool_failed")  # still open


def test_dashboard_renders_charts_from_aggregates(demo):
    seed(demo)
    html = client_for(demo["operator"]).get("/dashboard/").content.decode()
    for testid in ("chart-outcomes", "chart-reasons", "chart-cost-day", "chart-cost-agent",
                   "chart-tiers", "operators"):
        assert f'data-testid="{testid}"' in html
    assert html.count("<svg") >= 5 and "no data yet" not in html
    assert re.search(r'data-testid="tile-runs">7<', html)  # 3 finished + 4 escalated
    assert re.search(r'data-testid="tile-escalation-rate">57%<', html)  # 4 of 7
    assert "$0.0430" in html  # cost in the window
    assert "succeeded: 2" in html and "low confidence: 1" in html  # bar tooltips
    assert "large: 1" in html and "small: " in html  # tier mix tooltips
    rows = re.findall(r'data-testid="operator-row">\s*<td>(\w+)</td>\s*<td class="num">(\d+)',
                      html)
    assert rows == [("operator", "2"), ("admin", "1")]
    assert ">1m 00s<" in html  # operator's median of 20 s and 100 s
    rates = re.findall(r'data-testid="operator-override-rate">(\d+%)<', html)
    assert rates == ["50%", "100%"]  # operator: one reject of two; admin: an edited approve


def test_dashboard_windows_and_scope(demo):
    seed(demo)
    outsider = client_for(demo["outsider"]).get("/dashboard/?days=7").content.decode()
    assert "no data yet" in outsider and "operator-row" not in outsider
    assert client_for(demo["operator"]).get("/dashboard/?days=999").status_code == 200
    window = stats.Window.last(30)
    assert len(stats.cost_per_day(demo["operator"], window)) == 30


def test_charts_escape_labels_and_handle_empty_data():
    svg = charts.bar_chart([("<script>", 3), ("b", 1)], label="x")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and 'width="100.00%"' in svg
    assert "no data yet" in charts.bar_chart([], label="Nothing")
    assert "no data yet" in charts.line_chart([("a", 0)], label="Zero")
    line = charts.line_chart([("a", 1.0), ("b", 3.0)], label="Line")
    assert "<polyline" in line and line.count("<circle") == 2
    stacked = charts.stacked_bars(["d1", "d2"], [("small", [1, 2]), ("large", [0, 1])],
                                  label="Tiers")
    assert stacked.count("<rect") == 3
    assert [charts.nice_max(v) for v in (0.7, 3, 12, 0.031)] == [1, 5, 20, 0.05]
