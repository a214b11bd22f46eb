"""/metrics (Prometheus text format, numbers computed from the database at scrape time),
the optional token, and request ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from runs.api_keys import create_api_key
from runs.breakers import breaker_store
from runs.models import Escalation, Run, ToolCall
from tests.api.conftest import (  # noqa: F401  (autouse fixtures)
    fast_password_hashing,
    hold_runs_unless_worker,
)

from .helpers import submit, wait_status

TOKEN = "scrape-me"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    """Outside DEBUG, /metrics needs a token (a test of its own checks the refusal)."""
    settings.METRICS_TOKEN = TOKEN
    return settings


def scrape(client: Client | None = None, **headers) -> dict[str, dict[tuple, float]]:
    headers.setdefault("Authorization", f"Bearer {TOKEN}")
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


@pytest.mark.usefixtures("celery_worker")
def test_metrics_reflect_runs_steps_tokens_and_cost(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    samples = scrape()
    assert value(samples, "agentdesk_runs", status="succeeded", reason="") == 1
    assert value(samples, "agentdesk_steps", kind="model", tier="small") >= 1
    assert value(samples, "agentdesk_tokens_total", kind="in") == run.tokens_in > 0
    assert value(samples, "agentdesk_cost_usd_total") == pytest.approx(float(run.cost_usd))
    assert value(samples, "agentdesk_tool_calls_total", tool="lookup_order",
                 status="succeeded") == 1
    assert "agentdesk_queue_depth" in samples


def test_escalations_open_and_time_to_decision(demo):
    run = submit(demo["team"], demo["operator"], "hello")
    now = timezone.now()
    open_one = Escalation.objects.create(run=run, team=demo["team"], step_index=0,
                                         reason="approval_required", question="?")
    decided = Escalation.objects.create(run=run, team=demo["team"], step_index=1,
                                        reason="low_confidence", question="?",
                                        status="decided", decision="approve")
    Escalation.objects.filter(pk=decided.pk).update(created_at=now - timedelta(seconds=45),
                                                    decided_at=now)
    samples = scrape()
    assert open_one.pk and value(samples, "agentdesk_escalations_open",
                                 reason="approval_required") == 1
    name = "agentdesk_escalation_time_to_decision_seconds"
    assert value(samples, name + "_bucket", le="30.0") == 0
    assert value(samples, name + "_bucket", le="60.0") == 1
    assert value(samples, name + "_bucket", le="+Inf") == 1
    assert value(samples, name + "_count") == 1
    assert value(samples, name + "_sum") == pytest.approx(45, abs=1)


def test_tool_failures_and_breaker_state(demo):
    run = submit(demo["team"], demo["operator"], "hello")
    ToolCall.objects.create(run=run, idempotency_key=f"{run.pk}:3", tool="lookup_order",
                            status="failed", error="503")
    store = breaker_store()
    for _ in range(10):
        store.record_failure("lookup_order")
    samples = scrape()
    assert value(samples, "agentdesk_tool_failures_total", tool="lookup_order") == 1
    assert value(samples, "agentdesk_tool_breaker_state", tool="lookup_order",
                 state="open") == 1
    assert value(samples, "agentdesk_tool_breaker_state", tool="lookup_order",
                 state="closed") == 0


def test_api_requests_are_counted_by_status(demo):
    before = scrape()
    raw = create_api_key(team=demo["team"], name="m").raw
    client = Client()
    client.get("/api/v1/runs", headers={"Authorization": f"Bearer {raw}"})
    client.get("/api/v1/runs")
    after = scrape()
    for status in ("200", "401"):
        delta = (value(after, "agentdesk_api_requests_total", method="GET", status=status)
                 - value(before, "agentdesk_api_requests_total", method="GET", status=status))
        assert delta == 1, status


def test_metrics_token_is_required_when_set(demo, settings):
    settings.METRICS_TOKEN = "scrape-me"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    samples = scrape(client, Authorization="Bearer scrape-me")
    assert "agentdesk_queue_depth" in samples and Run.objects.count() == 0


def test_metrics_are_refused_outside_debug_without_a_token(demo, settings):
    """Fail closed: every team's totals are not served to anyone who asks."""
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    response = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 403
    body = response.content.decode()
    assert "set METRICS_TOKEN" in body and "agentdesk_" not in body
    settings.DEBUG = True  # a developer's machine: open
    assert Client().get("/metrics").status_code == 200


def test_request_id_is_echoed_or_generated(demo):
    client = Client()
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given["X-Request-ID"] == "abc-123"
    made = client.get("/healthz")
    assert len(made["X-Request-ID"]) == 32
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert hostile["X-Request-ID"] != "x" * 500
    api = client.get("/api/v1/runs", headers={"X-Request-ID": "req-9"})
    assert api.status_code == 401 and api["X-Request-ID"] == "req-9"


def test_model_calls_become_genai_spans_when_tracing_is_on():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentdesk.runtime.llm import ModelReply
    from agentdesk.runtime.profiles import ModelProfile
    from runs import tracing

    class Model:
        def complete(self, *, profile, messages, tools, max_tokens, sampling=None):
            return ModelReply(model=profile.name + "-2025", content="{}", tokens_in=120,
                              tokens_out=30)

    assert tracing.traced(Model()).__class__ is Model  # off without an OTLP endpoint
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = tracing.TracedModelClient(Model(), provider.get_tracer("test"))
    client.complete(profile=ModelProfile(name="sim-small"), messages=[], tools=[],
                    max_tokens=256)
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat sim-small"
    assert span.attributes["gen_ai.system"] == "openai"
    assert span.attributes["gen_ai.request.model"] == "sim-small"
    assert span.attributes["gen_ai.response.model"] == "sim-small-2025"
    assert span.attributes["gen_ai.usage.input_tokens"] == 120
    assert span.attributes["gen_ai.usage.output_tokens"] == 30
