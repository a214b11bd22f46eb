"""Optional OpenTelemetry traces of model calls (GenAI semantic conventions).

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set *and* the packages are installed
(``pip install 'agentdesk[otel]'``); otherwise the model client is returned untouched and
nothing is imported. Each model call becomes a CLIENT span ``chat <model>`` carrying
``gen_ai.system``, ``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.request.max_tokens``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens`` and the run id. The exporter reads the standard
``OTEL_*`` variables (endpoint, headers, ``OTEL_SERVICE_NAME``).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

import structlog
from django.conf import settings

from agentdesk.runtime.llm import DETERMINISTIC, ModelClient, ModelReply, Sampling
from agentdesk.runtime.profiles import ModelProfile

log = logging.getLogger(__name__)


class TracedModelClient:
    """A ``ModelClient`` that wraps every ``complete`` in a GenAI span."""

    def __init__(self, inner: ModelClient, tracer: Any, system: str = "openai") -> None:
        self.inner, self.tracer, self.system = inner, tracer, system

    def complete(self, *, profile: ModelProfile, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]], max_tokens: int,
                 sampling: Sampling = DETERMINISTIC) -> ModelReply:
        model = profile.name
        from opentelemetry.trace import SpanKind, Status, StatusCode

        with self.tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.system", self.system)
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.request.max_tokens", max_tokens)
            if sampling.temperature is not None:  # an agreement sample
                span.set_attribute("gen_ai.request.temperature", sampling.temperature)
            run_id = structlog.contextvars.get_contextvars().get("run_id")
            if run_id is not None:
                span.set_attribute("agentdesk.run_id", str(run_id))
            try:
                reply = self.inner.complete(profile=profile, messages=messages, tools=tools,
                                            max_tokens=max_tokens, sampling=sampling)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                raise
            span.set_attribute("gen_ai.response.model", reply.model)
            span.set_attribute("gen_ai.usage.input_tokens", reply.tokens_in)
            span.set_attribute("gen_ai.usage.output_tokens", reply.tokens_out)
            return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@cache
def tracer() -> Any | None:
    """This process's tracer, or None when tracing is off or not installed."""
    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
                    "(pip install 'agentdesk[otel]'); tracing is off")
        return None
    name = os.environ.get("OTEL_SERVICE_NAME", "agentdesk")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("agentdesk")


def traced(client: ModelClient) -> ModelClient:
    active = tracer()
    return client if active is None else TracedModelClient(client, active)
