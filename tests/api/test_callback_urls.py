"""SSRF guard at submit time: callback URLs on loopback, private, link-local, multicast or
reserved addresses are refused with a 422 on ``callback_url`` (API, service, admin) unless
``WEBHOOK_ALLOW_PRIVATE_HOSTS`` is on. No request is sent anywhere by these tests: the
addresses are literals (checked without DNS) or ``localhost``."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import Client

from runs import callback_urls, errors, services
from runs.models import Run, Team

from .conftest import submit_body

REFUSED = [
    "http://127.0.0.1:8000/hook",
    "http://127.8.9.10/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://0.0.0.0:8000/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://240.0.0.1/hook",  # reserved
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00:ec2::254]/hook",  # unique local (the IPv6 metadata service)
    "https://[ff02::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "https://[::ffff:169.254.169.254]/hook",
    "https://[2002:a00:1::]/hook",  # 6to4 around 10.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
    "http://localhost:8000/hook",  # a name: resolved, then checked
]


@pytest.fixture
def guarded(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    return settings


@pytest.mark.parametrize("url", REFUSED)
def test_submit_refuses_a_non_public_callback_with_a_field_error(api, guarded, url):
    response = api.post("/runs", submit_body(callback_url=url))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_callback_url"
    assert "public addresses" in error["fields"]["callback_url"][0]
    assert Run.objects.count() == 0


def test_the_message_names_the_address_a_name_resolves_to(api, guarded):
    response = api.post("/runs", submit_body(callback_url="http://localhost:9/hook"))
    message = response.json()["error"]["fields"]["callback_url"][0]
    assert "localhost resolves to" in message and "loopback" in message


def test_literal_ip_message(api, guarded):
    response = api.post("/runs", submit_body(
        callback_url="http://169.254.169.254/latest/meta-data/"))
    assert response.json()["error"]["fields"]["callback_url"] == [
        "The callback host 169.254.169.254 is a link-local address: webhooks are only sent "
        "to public addresses."]


def test_only_http_and_https(guarded):
    for url in ("ftp://8.8.8.8/x", "file:///etc/passwd", "gopher://8.8.8.8/", "http:///x"):
        with pytest.raises(callback_urls.RefusedURL):
            callback_urls.check(url)


def test_public_addresses_pass(guarded):
    for url in ("https://8.8.8.8/hook", "http://1.1.1.1:8080/x", "https://[2606:4700::1111]/"):
        callback_urls.check(url)  # literals: no lookup, no request


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111",
                                     "2001:4860:4860::8888"])
def test_refusal_lets_public_unicast_through(address):
    assert callback_urls.refusal(ipaddress.ip_address(address)) is None


def test_the_service_refuses_too(demo, guarded):
    with pytest.raises(errors.CallbackRefused) as caught:
        services.submit_run(team=demo["team"], agent_slug="support-refunds",
                            task_input={"message": "Where is my order 1077?"}, user_id=None,
                            callback_url="http://10.1.2.3/hook")
    assert set(caught.value.fields) == {"callback_url"}


def test_allowed_when_private_hosts_are_allowed(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    response = api.post("/runs", submit_body(callback_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 201


def test_the_default_follows_the_deployment(settings):
    """On by default only on the embedded default and with DEBUG (unless the env says)."""
    import os

    if "WEBHOOK_ALLOW_PRIVATE_HOSTS" in os.environ:
        pytest.skip("set explicitly in the environment")
    expected = bool(settings.EMBEDDED or settings.DEBUG)
    assert settings.WEBHOOK_ALLOW_PRIVATE_HOSTS is expected


def _team_form(team: Team, url: str) -> dict[str, object]:
    return {"slug": team.slug, "name": team.name, "callback_url": url, "webhook_secret": "",
            "daily_budget_usd": "", "max_running_runs": "",
            "auto_assign_active_minutes": team.auto_assign_active_minutes,
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}


def test_admin_refuses_a_private_team_default(demo, guarded):
    admin = Client()
    admin.force_login(demo["admin"])
    team = demo["team"]
    response = admin.post(f"/admin/runs/team/{team.pk}/change/",
                          _team_form(team, "http://169.254.169.254/hook"))
    assert response.status_code == 200  # the form again, with the error
    assert "link-local address" in response.content.decode()
    team.refresh_from_db()
    assert team.callback_url == ""
    response = admin.post(f"/admin/runs/team/{team.pk}/change/",
                          _team_form(team, "https://8.8.8.8/hook"))
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.callback_url == "https://8.8.8.8/hook"
