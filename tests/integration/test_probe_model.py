"""``manage.py probe_model`` and admin's "Probe selected models" find what each of the
simulator's serving modes accepts, over HTTP, and record it on the catalogue row."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from runs.models import ModelProfile


def probe(*args: str) -> str:
    out = StringIO()
    call_command("probe_model", *args, stdout=out)
    return out.getvalue()


def capabilities(name: str) -> tuple:
    row = ModelProfile.objects.get(name=name)
    return (row.reasoning, row.tool_calling, row.structured_output, row.logprobs)


@pytest.mark.django_db
def test_a_reasoning_model_is_found_and_recorded(llmsim) -> None:
    output = probe("sim-small:reasoning", "--create")
    assert capabilities("sim-small:reasoning") == (True, "native", "json_schema", False)
    assert "Reasoning: no → yes" in output
    assert "Logprobs: no (unchanged)" in output
    assert "has no price: it cannot spend" in output
    row = ModelProfile.objects.get(name="sim-small:reasoning")
    assert row.probed_at is not None and row.input_per_mtok is None
    probes = {r["probe"]: r["status"] for r in row.probe_report["requests"]}
    assert probes["max_tokens"] == 400 and probes["max_completion_tokens"] == 200
    assert "max_tokens" in row.probe_report["evidence"]["reasoning"]


@pytest.mark.django_db
def test_a_llama_style_server_without_tools_is_found(llmsim) -> None:
    output = probe("sim-small:json-object:no-tools", "--create")
    assert capabilities("sim-small:json-object:no-tools") == (
        False, "prompted", "json_object", True)
    assert "Structured output: json_schema → json_object" in output
    assert "Tool calling: native → prompted" in output
    assert "Usage: returned with every reply" in output


@pytest.mark.django_db
def test_a_wrong_row_is_corrected_and_prices_are_kept(llmsim) -> None:
    ModelProfile.objects.update_or_create(name="sim-large", defaults={
        "input_per_mtok": Decimal("2.5"), "cached_input_per_mtok": Decimal("1.25"),
        "output_per_mtok": Decimal("10"), "tool_calling": "prompted",
        "structured_output": "prompt", "reasoning": True})
    dry = probe("sim-large", "--dry-run")
    assert "Tool calling: prompted → native" in dry and "Dry run: nothing saved." in dry
    assert capabilities("sim-large") == (True, "prompted", "prompt", False)

    probe("sim-large")
    assert capabilities("sim-large") == (False, "native", "json_schema", True)
    assert ModelProfile.objects.get(name="sim-large").output_per_mtok == Decimal("10")
    assert "capabilities" not in probe("sim-large")  # a second probe changes nothing
    assert "(unchanged)" in probe("sim-large")


@pytest.mark.django_db
def test_missing_usage_is_reported(llmsim) -> None:
    output = probe("sim-small:no-usage", "--create", "--dry-run")
    assert "Usage: MISSING from some replies" in output
    assert not ModelProfile.objects.filter(name="sim-small:no-usage").exists()


@pytest.mark.django_db
def test_an_unknown_name_lists_the_known_models(llmsim) -> None:
    ModelProfile.objects.get_or_create(name="sim-small")
    with pytest.raises(CommandError, match=r"No model 'sim-tiny' in the catalogue \(known: .*"
                                           r"sim-small.*--create"):
        probe("sim-tiny")


@pytest.mark.django_db
def test_a_model_the_endpoint_does_not_serve_is_a_clear_error(llmsim) -> None:
    with pytest.raises(CommandError, match="does not serve this model"):
        probe("gpt-9", "--create")
    assert not ModelProfile.objects.filter(name="gpt-9").exists()


def test_the_admin_action_probes_and_reports(demo, llmsim) -> None:
    row, _ = ModelProfile.objects.update_or_create(
        name="sim-small:no-tools", defaults={"tool_calling": "native"})
    client = Client()
    client.force_login(demo["admin"])
    response = client.post("/admin/runs/modelprofile/", {
        "action": "probe_selected", "_selected_action": [row.pk]}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("sim-small:no-tools: tool_calling native → prompted" in m for m in shown), shown
    assert capabilities("sim-small:no-tools")[1] == "prompted"
