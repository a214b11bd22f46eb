"""An unpriced model cannot spend, end to end: through the real worker, the simulator over
HTTP and the console / API. The run escalates ``model_unpriced`` at its first model call
having spent nothing; a decision is refused until an admin sets the price; then the run
goes on with the price in its snapshot and finishes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from runs import services
from runs.api_keys import create_api_key
from runs.models import Escalation, ModelProfile, Run
from tests.api.conftest import ApiClient, submit_body

from .helpers import open_escalation, submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")

PRICES = {"input_per_mtok": Decimal("0.15"), "cached_input_per_mtok": Decimal("0.075"),
          "output_per_mtok": Decimal("0.60")}


def _unprice(name: str = "sim-small") -> None:
    ModelProfile.objects.filter(name=name).update(
        input_per_mtok=None, cached_input_per_mtok=None, output_per_mtok=None)


def _price(name: str = "sim-small") -> None:
    """What saving the prices in admin → Models → name writes."""
    ModelProfile.objects.filter(name=name).update(**PRICES)


def _paused_for_a_price(run: Run) -> Escalation:
    wait_status(run, "waiting_human")
    assert run.reason == "model_unpriced"
    assert (run.cost_usd, run.tokens_in, run.tokens_out) == (0, 0, 0)  # spent nothing
    assert not run.steps.filter(kind="model").exists()  # the model was never called
    esc = open_escalation(run)
    assert esc.reason == "model_unpriced" and esc.priority == 20
    assert "admin → Models → sim-small" in esc.question and "0 is a valid price" in esc.question
    return esc


def test_an_unpriced_model_escalates_before_spending_and_goes_on_once_priced(demo):
    _unprice()
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    esc = _paused_for_a_price(run)

    console = Client()
    console.force_login(demo["operator"])
    page = console.get(f"/escalations/{esc.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "admin → Models → sim-small" in html
    assert 'data-testid="action-approve"' in html  # approve = go on, once priced

    refused = console.post(f"/escalations/{esc.pk}/decide/", {"action": "approve"},
                           headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert "sim-small still has no price" in refused.content.decode()
    esc.refresh_from_db()
    run.refresh_from_db()
    assert esc.status == Escalation.Status.OPEN and run.status == "waiting_human"

    _price()
    decided = console.post(f"/escalations/{esc.pk}/decide/", {"action": "approve"},
                           headers={"HX-Request": "true"})
    assert decided.status_code == 200
    wait_status(run, "succeeded")
    assert run.policy.models["sim-small"].priced  # the snapshot took the catalogue's row
    assert run.cost_usd > 0
    profile = run.policy.models["sim-small"]
    steps = run.steps.filter(kind="model")
    assert steps and sum(s.cost_usd for s in steps) == run.cost_usd
    for step in steps:  # usage as the simulator reported it, priced from the catalogue
        assert step.tokens_in > 0 and step.args["prompt_tokens_estimated"] > 0
        assert step.args["prompt_tokens_ratio"] == pytest.approx(
            step.tokens_in / step.args["prompt_tokens_estimated"], abs=1e-3)
        assert step.cost_usd == profile.cost(step.tokens_in, step.tokens_cached,
                                             step.tokens_out)


def test_through_the_api_the_refusal_is_named_and_extending_goes_on(demo):
    _unprice()
    api = ApiClient(create_api_key(team=demo["team"], name="test").raw)
    run = Run.objects.get(pk=api.post("/runs", submit_body()).json()["id"])
    esc = _paused_for_a_price(run)

    refused = api.post(f"/escalations/{esc.pk}/resolve", {"action": "extend_budget"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "model_unpriced"

    _price()
    assert api.post(f"/escalations/{esc.pk}/resolve",
                    {"action": "extend_budget"}).status_code == 200
    wait_status(run, "succeeded")
    assert run.cost_usd > 0


def test_abort_needs_no_price(demo):
    _unprice()
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    esc = _paused_for_a_price(run)
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="abort")
    wait_status(run, "aborted")
    assert run.cost_usd == 0
