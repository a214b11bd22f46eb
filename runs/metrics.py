"""``/metrics`` in Prometheus' text format.

Everything the database knows (runs by status and reason, steps by kind and tier, tokens,
cost, open escalations, time to decision, tool calls, webhook deliveries) is computed *at
scrape time* from the database, so any web process gives the same, complete answer however
many processes and workers there are. The queue depth comes from Redis (LLEN of the Celery
queue; 0 on the in-process broker) and breaker states from the shared breaker store.

The one thing counted in memory is API requests by method and status: that counter is per
process (each web process exposes its own; Prometheus sums them across targets) and starts
from zero when the process restarts, as counters do.

Totals of every team are no one team's business: scrapes need ``Authorization: Bearer
<METRICS_TOKEN>``. Outside DEBUG, with no ``METRICS_TOKEN`` set, ``/metrics`` answers 403
and says how to turn it on (fail closed); with DEBUG and no token it is open.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from .breakers import breaker_states
from .models import Escalation, Run, Step, ToolCall, WebhookDelivery

log = logging.getLogger(__name__)
DECISION_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
BREAKER_STATES = ("closed", "half_open", "open")

# No auto_describe: describing a collector would run its queries at import time.
REGISTRY = CollectorRegistry(auto_describe=False)
API_REQUESTS = Counter(
    "agentdesk_api_requests", "REST API responses by method and status (this process).",
    ["method", "status"], registry=REGISTRY,
)


def count_api_request(method: str, status: int) -> None:
    API_REQUESTS.labels(method=method, status=str(status)).inc()


class DatabaseCollector(Collector):
    """Gauges and totals read from the database on every scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from runs_metrics()
        yield from steps_metrics()
        yield from escalation_metrics()
        yield from tool_metrics()
        yield from webhook_metrics()


class RuntimeCollector(Collector):
    """Queue depth (broker) and breaker states (shared store)."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("agentdesk_queue_depth",
                                  "Messages waiting in the Celery queue.", labels=["queue"])
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        depth.add_metric([queue], queue_depth(queue))
        yield depth
        yield from breaker_metrics()


def count_by(name: str, doc: str, rows: QuerySet, labels: list[str]) -> Metric:
    """A gauge of row counts grouped by ``labels`` (one GROUP BY query)."""
    gauge = GaugeMetricFamily(name, doc, labels=labels)
    for row in rows.values(*labels).annotate(n=Count("pk")).order_by():
        gauge.add_metric([row[label] for label in labels], row["n"])
    return gauge


def runs_metrics() -> Iterator[Metric]:
    yield count_by("agentdesk_runs", "Runs by status and reason.", Run.objects,
                   ["status", "reason"])
    totals = Run.objects.aggregate(
        tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"),
        tokens_cached=Sum("tokens_cached"), tokens_reasoning=Sum("tokens_reasoning"),
        cost=Sum("cost_usd"),
    )
    tokens = CounterMetricFamily("agentdesk_tokens", "Model tokens used by all runs.",
                                 labels=["kind"])
    for kind in ("in", "out", "cached", "reasoning"):
        tokens.add_metric([kind], float(totals[f"tokens_{kind}"] or 0))
    yield tokens
    cost = CounterMetricFamily("agentdesk_cost_usd", "Model spend of all runs (USD).")
    cost.add_metric([], float(totals["cost"] or 0))
    yield cost


def steps_metrics() -> Iterator[Metric]:
    yield count_by("agentdesk_steps", "Steps by kind and tier (model steps).", Step.objects,
                   ["kind", "tier"])


def escalation_metrics() -> Iterator[Metric]:
    yield count_by("agentdesk_escalations_open", "Escalations waiting for a human, by reason.",
                   Escalation.objects.filter(status=Escalation.Status.OPEN), ["reason"])
    decided = Escalation.objects.filter(status=Escalation.Status.DECIDED,
                                        decided_at__isnull=False)
    buckets = {f"le_{b}": Count("pk", filter=Q(decided_at__lte=F("created_at")
                                                + timedelta(seconds=b)))
               for b in DECISION_BUCKETS}
    wait = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    row = decided.aggregate(total=Count("pk"), waited=Sum(wait), **buckets)
    hist = HistogramMetricFamily("agentdesk_escalation_time_to_decision_seconds",
                                 "From escalation to a human's decision.")
    waited = row["waited"]
    hist.add_metric(
        [], [(str(float(b)), row[f"le_{b}"]) for b in DECISION_BUCKETS]
        + [("+Inf", row["total"])],
        sum_value=waited.total_seconds() if waited else 0.0,
    )
    yield hist


def tool_metrics() -> Iterator[Metric]:
    calls = CounterMetricFamily("agentdesk_tool_calls",
                                "Tool executions in the ledger, by tool and outcome.",
                                labels=["tool", "status"])
    failures = CounterMetricFamily("agentdesk_tool_failures", "Failed tool executions.",
                                   labels=["tool"])
    for row in ToolCall.objects.values("tool", "status").annotate(n=Count("pk")).order_by():
        calls.add_metric([row["tool"], row["status"]], row["n"])
        if row["status"] == ToolCall.Status.FAILED:
            failures.add_metric([row["tool"]], row["n"])
    yield calls
    yield failures


def webhook_metrics() -> Iterator[Metric]:
    yield count_by("agentdesk_webhook_deliveries", "Webhook deliveries by status.",
                   WebhookDelivery.objects, ["status"])


def breaker_metrics() -> Iterator[Metric]:
    state = GaugeMetricFamily("agentdesk_tool_breaker_state",
                              "1 for each tool's current circuit state (others 0).",
                              labels=["tool", "state"])
    failures = GaugeMetricFamily("agentdesk_tool_breaker_failures",
                                 "Consecutive failures a tool's breaker has counted.",
                                 labels=["tool"])
    try:
        states = breaker_states()
    except Exception:  # the breaker store is down: say nothing rather than fail the scrape
        log.warning("breaker states unavailable", exc_info=True)
        states = {}
    for tool, info in states.items():
        for name in BREAKER_STATES:
            state.add_metric([tool, name], 1.0 if info.get("state") == name else 0.0)
        failures.add_metric([tool], float(info.get("failures") or 0))
    yield state
    yield failures


def queue_depth(queue: str) -> int:
    """LLEN of the Celery queue on Redis (with kombu's priority sub-queues); 0 in memory."""
    if not settings.REDIS_URL:
        return 0
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0,
                                      socket_connect_timeout=1.0)
        names = [queue] + [f"{queue}\x06\x16{p}" for p in (3, 6, 9)]
        with client.pipeline() as pipe:
            for name in names:
                pipe.llen(name)
            return int(sum(pipe.execute()))
    except redis.RedisError:
        log.warning("queue depth unavailable", exc_info=True)
        return 0


REGISTRY.register(DatabaseCollector())
REGISTRY.register(RuntimeCollector())


METRICS_OFF = ("/metrics is off: set METRICS_TOKEN (e.g. the output of python -c 'import "
               "secrets; print(secrets.token_urlsafe(32))') and scrape with "
               "'Authorization: Bearer <METRICS_TOKEN>'.\n")


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token and not settings.DEBUG:
        return HttpResponse(METRICS_OFF, status=403, content_type="text/plain")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            response = HttpResponse("metrics need a bearer token\n", status=401,
                                    content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
