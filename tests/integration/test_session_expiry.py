"""A lost session or CSRF token in the middle of an action (issue 11): htmx gets a clear
alert to show (never the login page swapped into the decision card), a plain post logs in
back to the page it came from (never to the POST-only URL), and nothing is decided."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client

from runs.models import Escalation

from .console_data import PASSWORD, client_for, escalation, no_resume  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_resume")


def hx(page: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Current-URL": f"http://testserver{page}"}


def still_open(esc: Escalation) -> bool:
    esc.refresh_from_db()
    return esc.status == Escalation.Status.OPEN


def test_htmx_decision_without_a_session_gets_the_alert_not_the_login_page(demo):
    esc = escalation(demo["team"])
    page = f"/escalations/{esc.pk}/?q=refund"
    resp = Client().post(f"/escalations/{esc.pk}/decide/",
                         {"action": "reply", "message": "It is order 1001"}, headers=hx(page))
    body = resp.content.decode()
    assert resp.status_code == 401 and resp["X-AgentDesk-Session"] == "expired"
    assert "Your session expired" in body and "what you typed is kept" in body
    assert f'href="/accounts/login/?next={quote(page, safe="")}"' in body
    assert 'name="password"' not in body  # not the login page in the card
    assert still_open(esc)


def test_htmx_refresh_without_a_session_gets_the_alert_too(demo):
    esc = escalation(demo["team"])
    resp = Client().get(f"/escalations/{esc.pk}/claim/", headers=hx(f"/escalations/{esc.pk}/"))
    assert resp.status_code == 401 and "Your session expired" in resp.content.decode()


def test_plain_post_without_a_session_logs_in_back_to_the_escalation_page(demo):
    esc = escalation(demo["team"])
    client = Client()
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "approve"},
                       headers={"Referer": f"http://testserver/escalations/{esc.pk}/"})
    assert resp.status_code == 302
    assert resp["Location"] == f"/accounts/login/?next=%2Fescalations%2F{esc.pk}%2F"
    login = client.post("/accounts/login/", {"username": "operator", "password": PASSWORD,
                                             "next": f"/escalations/{esc.pk}/"})
    assert login.status_code == 302 and login["Location"] == f"/escalations/{esc.pk}/"
    assert client.get(login["Location"]).status_code == 200  # a page, not 405
    assert still_open(esc)


def test_a_foreign_referer_is_not_where_login_returns(demo):
    esc = escalation(demo["team"])
    resp = Client().post(f"/escalations/{esc.pk}/decide/", {"action": "approve"},
                         headers={"Referer": "https://evil.example/escalations/1/"})
    assert resp["Location"] == "/accounts/login/?next=%2F"


def test_pages_still_redirect_to_login_as_before(demo):
    resp = Client().get("/inbox/")
    assert resp.status_code == 302 and resp["Location"] == "/accounts/login/?next=/inbox/"


def test_htmx_csrf_failure_gets_the_same_alert_and_decides_nothing(demo):
    esc = escalation(demo["team"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo["operator"])
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "reject"},
                       headers=hx(f"/escalations/{esc.pk}/"))
    body = resp.content.decode()
    assert resp.status_code == 403 and resp["X-AgentDesk-Session"] == "csrf"
    assert "Your session expired" in body and "Log in again" in body
    assert f"next=%2Fescalations%2F{esc.pk}%2F" in body
    assert still_open(esc)


def test_plain_csrf_failure_gets_a_styled_page(demo):
    esc = escalation(demo["team"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo["operator"])
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "reject"})
    body = resp.content.decode()
    assert resp.status_code == 403 and "X-AgentDesk-Session" not in resp
    assert "<main" in body and "app.css" in body  # the console's layout, not Django's page
    assert still_open(esc)


def test_api_errors_are_untouched(demo):
    resp = client_for(None).get("/api/v1/runs", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and "X-AgentDesk-Session" not in resp
