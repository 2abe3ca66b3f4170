"""Prometheus metrics: counted per method and status, served on their own port only."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from app import server
from app.config import Settings
from app.headers import SecurityHeaders, security_headers
from app.metrics import Metrics, MetricsApp, new_registry
from app.service import create_app
from app.typing import Receive, Scope, Send
from tests.app.support import LOCAL, call, http_scope, parse_response, running_server


async def teapot(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_requests_are_counted_by_method_and_status_and_timed() -> None:
    registry = CollectorRegistry()
    app = Metrics(teapot, registry)

    await call(app, http_scope(method="GET"))
    await call(app, http_scope(method="GET"))
    await call(app, http_scope(method="BREW"))

    assert sample(registry, "http_requests_total", method="GET", status="418") == 2
    # a made-up method cannot add label values without bound
    assert sample(registry, "http_requests_total", method="other", status="418") == 1
    assert sample(registry, "http_request_duration_seconds_count", method="GET") == 2


async def test_the_metrics_app_serves_the_text_format() -> None:
    registry = new_registry()
    Metrics(teapot, registry)

    exchange = await call(MetricsApp(registry), http_scope("/metrics"))

    assert exchange.status == 200
    assert (exchange.header(b"content-type") or b"").startswith(b"text/plain")
    assert b"http_requests_total" in exchange.body
    assert b"process_resident_memory_bytes" in exchange.body


async def test_the_metrics_app_answers_nothing_else() -> None:
    app = MetricsApp(new_registry())

    missing = await call(app, http_scope("/"))
    posted = await call(app, http_scope("/metrics", method="POST"))

    assert missing.status == 404
    assert (posted.status, posted.header(b"allow")) == (405, b"GET, HEAD")


async def test_metrics_are_on_their_own_port_and_not_on_the_service_port() -> None:
    settings = Settings(host=LOCAL, port=0, metrics_port=1, access_log=False)
    service = create_app(settings)
    assert service.metrics_registry is not None
    metrics_app = SecurityHeaders(MetricsApp(service.metrics_registry), security_headers(settings))
    metrics_listener = server.listen(LOCAL, 0)
    metrics_port = metrics_listener.getsockname()[1]

    async with running_server(
        service.stack,
        settings,
        lifecycle=service.lifecycle,
        metrics=(metrics_app, metrics_listener),
    ) as running:
        await running.get("/")
        on_service_port = await running.get("/metrics")
        reader, writer = await asyncio.open_connection(LOCAL, metrics_port)
        writer.write(
            f"GET /metrics HTTP/1.1\r\nHost: {LOCAL}\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await reader.read(-1)
        writer.close()
        await writer.wait_closed()

    scraped = parse_response(raw)
    assert on_service_port.status == 404
    assert scraped.status == 200
    assert b'http_requests_total{method="GET",status="200"}' in scraped.body
    assert scraped.header("x-frame-options") == "DENY"
