"""Who may see and do what: every console URL (pages and POST actions) × every persona.

Operators and admins of the demo team, and superusers, see and act on the demo team; a
user of another team gets a 404 for every demo object, page, action and websocket, and
no demo data in the lists; anonymous users are sent to log in.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from runs.models import Escalation

from .console_data import client_for, escalation, personas
from .console_data import no_resume as no_resume  # a fixture
from .test_live import connect

pytestmark = pytest.mark.usefixtures("no_resume")

SECRET = "Quarterly refund for the zebra account"
LOGIN = "login"

# (method, url template, data); {esc} and {run} are filled per test.
PAGES = [
    ("get", "/inbox/", None),
    ("get", "/escalations/{esc}/", None),
    ("get", "/escalations/{esc}/claim/", None),
    ("get", "/runs/", None),
    ("get", "/runs/{run}/", None),
    ("get", "/runs/new/", None),
    ("get", "/dashboard/", None),
    ("get", "/audit/", None),
    ("get", "/review/", None),
    ("get", "/calibration/", None),
]
ACTIONS = [
    ("post", "/escalations/{esc}/claim/", {}),
    ("post", "/escalations/{esc}/release/", {}),
    ("post", "/escalations/{esc}/decide/", {"action": "reject", "message": "no"}),
    ("post", "/runs/{run}/cancel/", {}),
]
LISTS = {"/inbox/", "/runs/", "/runs/new/", "/dashboard/", "/audit/", "/review/",
         "/calibration/"}
MEMBER = {"page": 200, "action": 302}
EXPECTED = {
    "operator": MEMBER,
    "admin": MEMBER,
    "superuser": MEMBER,
    "outsider": {"page": 404, "list": 200, "action": 404},
    "anonymous": {"page": LOGIN, "list": LOGIN, "action": LOGIN},
}


def expected(persona: str, kind: str, url: str):
    table = EXPECTED[persona]
    if kind == "page" and url in LISTS:
        return table.get("list", table["page"])
    return table[kind]


@pytest.mark.parametrize("persona", list(EXPECTED))
def test_every_url_for_every_persona(demo, persona):
    user = personas(demo)[persona]
    client = client_for(user)
    wrong = []
    for kind, table in (("page", PAGES), ("action", ACTIONS)):
        for method, template, data in table:
            esc = escalation(demo["team"], message=SECRET)  # fresh: actions change things
            url = template.format(esc=esc.pk, run=esc.run_id)
            resp = getattr(client, method)(url, data or {})
            want = expected(persona, kind, template)
            got = resp.status_code
            if want == LOGIN:
                ok = got == 302 and resp["Location"].startswith("/accounts/login/")
            else:
                ok = got == want
            if ok and got == 200 and persona == "outsider":
                ok = SECRET not in resp.content.decode()
            if ok and got == 200 and persona != "outsider" and template in ("/inbox/",
                                                                          "/runs/"):
                ok = SECRET in resp.content.decode()
            if not ok:
                wrong.append(f"{method.upper()} {template}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)
    untouched = Escalation.objects.filter(status="open", claimed_by__isnull=True).count()
    if persona in ("outsider", "anonymous"):
        assert untouched == Escalation.objects.count()  # nothing was claimed or decided


@pytest.mark.parametrize("persona", list(EXPECTED))
def test_run_websocket_for_every_persona(demo, persona):
    user = personas(demo)[persona]
    esc = escalation(demo["team"])
    allowed = persona in ("operator", "admin", "superuser")

    comm = connect(f"/ws/runs/{esc.run_id}/", user)
    inbox = connect("/ws/inbox/", user)

    async def scenario():
        connected, code = await comm.connect()
        assert connected is allowed and (allowed or code == 4404)
        if connected:
            await comm.disconnect()
        connected, code = await inbox.connect()
        assert connected is (persona != "anonymous")
        if connected:
            await inbox.disconnect()

    async_to_sync(scenario)()
