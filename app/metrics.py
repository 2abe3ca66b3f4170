"""Prometheus metrics: requests, latency and connections, on their own listener.

Off unless ``APP_METRICS_PORT`` is set. Then :class:`Metrics` counts and times every request of
the service, :class:`ConnectionCollector` reports open and refused connections, and
:class:`MetricsApp` answers ``GET /metrics`` on the separate port, so the public hostname
(which routes to the service port only) never exposes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from time import perf_counter
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from app.asgi import acknowledge_lifespan, send_status
from app.connections import ConnectionGauge
from app.typing import ASGIApp, Message, Receive, Scope, Send

# Methods get their own label value; any other token a client sends counts as "other", so a
# client cannot grow the label set without bound.
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def new_registry() -> CollectorRegistry:
    """A registry with the process collector (memory, CPU, open files) already in it."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


class Metrics:
    """ASGI middleware counting HTTP requests by method and status, and timing them."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method and status code.",
            ["method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of its response, by method.",
            ["method"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status = 500  # what the server answers if the app raises before responding

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.requests.labels(method, str(status)).inc()
            self.latency.labels(method).observe(perf_counter() - start)


class ConnectionCollector(Collector):
    """Open connections, their cap and the refused ones, read from the server's gauge."""

    def __init__(self, gauge: ConnectionGauge, registry: CollectorRegistry) -> None:
        self.gauge = gauge
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """The gauge's figures at scrape time."""
        yield GaugeMetricFamily(
            "http_connections_open", "Client connections open now.", value=self.gauge.open
        )
        yield GaugeMetricFamily(
            "http_connections_limit",
            "Most client connections kept open at once (APP_MAX_CONNECTIONS).",
            value=self.gauge.limit,
        )
        yield CounterMetricFamily(
            "http_connections_refused",
            "Client connections closed on arrival because the limit was reached.",
            value=self.gauge.refused,
        )


class MetricsApp:
    """The ASGI app behind the metrics port: ``GET /metrics`` in Prometheus' text format."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
        elif scope["type"] != "http":
            return
        elif scope["path"] != "/metrics":
            await send_status(send, 404)
        elif scope["method"] not in {"GET", "HEAD"}:
            await send_status(send, 405, headers=[(b"allow", b"GET, HEAD")])
        else:
            body = generate_latest(self.registry)
            headers = [
                (b"content-type", CONTENT_TYPE_LATEST.encode("ascii")),
                (b"content-length", str(len(body)).encode("ascii")),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
