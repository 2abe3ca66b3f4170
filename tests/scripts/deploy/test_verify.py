"""Verifying a deployed stack: the checks on ``GET /``, HTTP through httpx, latency, the report."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import cast

import httpx
import pytest
import yaml

from app.config import Settings
from app.logging import AccessLogWriter
from app.service import create_app
from app.typing import ASGIApp
from scripts.core import paths
from scripts.core.errors import VerifyError
from scripts.deploy import verify
from scripts.deploy.verify import (
    Answer,
    Check,
    VerifyReport,
    check_root,
    check_status,
    latency,
    verified,
)
from tests.app.support import LOCAL, Running, running_server, running_service
from tests.scripts.conftest import stack_record

GOOD_HEADERS = [
    ("content-type", "text/plain; charset=utf-8"),
    ("strict-transport-security", "max-age=63072000; includeSubDomains; preload"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
]
GOOD = Answer(status=200, headers=GOOD_HEADERS, body="Hello World", ms=1.5)


def _failed(checks: list[Check]) -> dict[str, str]:
    return {check.title: check.evidence for check in checks if not check.ok}


def _without(name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in GOOD_HEADERS if k != name]


def test_a_good_answer_passes_every_check() -> None:
    checks = check_root(GOOD)
    assert _failed(checks) == {}
    assert len(checks) == 3 + len(verify.EXPECTED_HEADERS)


@pytest.mark.parametrize("name", sorted(verify.EXPECTED_HEADERS))
def test_each_missing_security_header_fails_its_own_check(name: str) -> None:
    answer = replace(GOOD, headers=_without(name))
    assert _failed(check_root(answer)) == {f"header {name}": "missing"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("strict-transport-security", "max-age=300"),
        ("content-security-policy", "default-src 'self'"),
        ("x-content-type-options", "sniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("referrer-policy", "unsafe-url"),
        ("permissions-policy", "geolocation=()"),
        ("cross-origin-opener-policy", "unsafe-none"),
        ("cross-origin-resource-policy", "cross-origin"),
        ("cache-control", "public, max-age=60"),
    ],
)
def test_a_wrong_header_value_fails_and_shows_what_was_seen(name: str, value: str) -> None:
    answer = replace(GOOD, headers=[*_without(name), (name, value)])
    assert _failed(check_root(answer)) == {f"header {name}": value}


def test_status_body_and_server_header_fail_their_own_checks() -> None:
    assert _failed(check_root(replace(GOOD, status=503))) == {"GET / status": "503"}
    assert _failed(check_root(replace(GOOD, body="Hello Wörld"))) == {"GET / body": "'Hello Wörld'"}
    leaky = replace(GOOD, headers=[*GOOD_HEADERS, ("server", "hypercorn-h11")])
    assert _failed(check_root(leaky)) == {"no Server header from the origin": "hypercorn-h11"}


def test_through_the_edge_only_cloudflares_own_server_header_is_allowed() -> None:
    edge = replace(GOOD, headers=[*GOOD_HEADERS, ("server", "cloudflare")])
    assert _failed(check_root(edge, edge_server="cloudflare")) == {}
    assert _failed(check_root(edge)) == {"no Server header from the origin": "cloudflare"}
    leaky = replace(GOOD, headers=[*GOOD_HEADERS, ("server", "hypercorn-h11")])
    assert "no Server header from the origin" in _failed(
        check_root(leaky, edge_server="cloudflare")
    )


def test_header_lookup_is_case_insensitive_as_documented() -> None:
    answer = Answer(status=200, headers=[("content-type", "text/plain")], body="", ms=0.0)
    assert answer.header("content-type") == "text/plain"
    assert answer.header("Content-Type") == "text/plain"


def test_check_status() -> None:
    assert check_status("/readyz", replace(GOOD, status=200)).ok
    failed = check_status("/readyz", replace(GOOD, status=503))
    assert (failed.title, failed.ok, failed.evidence) == ("GET /readyz status", False, "503")


async def verify_against(running: Running) -> VerifyReport:
    """verify_http, as ``doit verify`` runs it, against a server in this test's event loop."""

    def check() -> VerifyReport:
        with httpx.Client(trust_env=False) as client:
            return verify.verify_http(running.url, client, "compose:local")

    return await asyncio.to_thread(check)


async def test_verify_passes_the_real_service_served_in_process() -> None:
    async with running_service(Settings(host=LOCAL, port=0)) as running:
        report = await verify_against(running)

    assert _failed(report.checks) == {}
    assert len(report.checks) == 3 + len(verify.EXPECTED_HEADERS) + 2
    assert report.target == "compose:local"
    assert set(report.latency_ms) == {"p50", "p95", "max"}
    paths = [line["path"] for line in running.access_lines()]
    assert paths.count("/") == 1 + verify.LATENCY_SAMPLES
    assert {"/healthz", "/readyz"} <= set(paths)


async def test_verify_fails_the_real_service_once_it_is_stopping() -> None:
    async with running_service(Settings(host=LOCAL, port=0)) as running:
        running.lifecycle.stopping()  # what SIGTERM does first: /readyz turns 503
        report = await verify_against(running)

    assert _failed(report.checks) == {"GET /readyz status": "503"}


async def test_verify_fails_the_service_without_its_security_middleware() -> None:
    # The routes alone, as Quart serves them: no security headers, Quart's own Server header
    # dropped only by the middleware.
    settings = Settings(host=LOCAL, port=0)
    service = create_app(settings, access_log=AccessLogWriter(io.StringIO()))
    async with running_server(
        cast(ASGIApp, service.asgi_app), settings, lifecycle=service.lifecycle
    ) as running:
        service.lifecycle.started()
        report = await verify_against(running)

    failed = _failed(report.checks)
    assert {f"header {name}" for name in verify.EXPECTED_HEADERS} <= set(failed)
    assert "GET / status" not in failed


def test_a_service_that_does_not_answer_is_a_verify_error_saying_what_to_do() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(VerifyError, match=r"http://127\.0\.0\.1:8080/ did not answer .*doit up"),
    ):
        verify.verify_http("http://127.0.0.1:8080", client, "compose:local")


def test_latency_median_and_max() -> None:
    stats = latency([5.0, 1.0, 3.0, 2.0, 4.0])
    assert stats["p50"] == 3.0
    assert stats["max"] == 5.0
    assert latency([7.123456]) == {"p50": 7.12, "p95": 7.12, "max": 7.12}


def test_latency_p95_of_twenty_samples_is_not_simply_the_maximum() -> None:
    # Nearest-rank p95 of 20 samples is the 19th smallest; verify takes exactly 20, so a p95
    # that always equals the max hides one slow outlier behind a "p95" label.
    samples = [float(n) for n in range(1, 20)] + [1000.0]
    stats = latency(samples)
    assert stats["max"] == 1000.0
    assert stats["p95"] == 19.0


def test_raise_for_failures_names_the_first_failure_and_counts_the_rest() -> None:
    report = VerifyReport(
        target="compose:local http://127.0.0.1:8080",
        checks=[
            verified("GET / status", True, "200"),
            verified("header x-frame-options", False, "missing"),
            verified("header referrer-policy", False, "unsafe-url"),
            verified("header cache-control", False, "missing"),
        ],
    )
    with pytest.raises(VerifyError) as caught:
        report.raise_for_failures()
    message = str(caught.value)
    assert message.startswith(
        "verify compose:local http://127.0.0.1:8080: header x-frame-options: missing (+2 more"
    )
    single = VerifyReport(target="t", checks=[verified("GET / body", False, "'nope'")])
    with pytest.raises(VerifyError) as caught:
        single.raise_for_failures()
    assert str(caught.value) == "verify t: GET / body: 'nope'"
    passed = VerifyReport(target="t", checks=[verified("GET / status", True, "200")])
    passed.raise_for_failures()
    assert passed.passed


def test_the_report_file_holds_every_check(tmp_path: Path) -> None:
    report = VerifyReport(
        target="t",
        checks=[verified("a", True, "ok"), verified("b", False, "bad")],
        latency_ms={"p50": 1.0},
    )
    report.write(tmp_path / "out" / "verify.json")
    data = json.loads((tmp_path / "out" / "verify.json").read_text())
    assert data == {
        "target": "t",
        "passed": False,
        "latency_ms": {"p50": 1.0},
        "checks": [
            {"id": "VFY-A", "title": "a", "ok": True, "evidence": "ok"},
            {"id": "VFY-B", "title": "b", "ok": False, "evidence": "bad"},
        ],
    }


class _Connector:
    """A cloudflared container as the SDK shows it: a name and exec_run."""

    def __init__(self, name: str, code: int, output: bytes = b"") -> None:
        self.name = name
        self.code = code
        self.output = output
        self.commands: list[list[str]] = []

    def exec_run(self, command: list[str]) -> tuple[int, bytes]:
        self.commands.append(command)
        return self.code, self.output


class _Engine:
    def __init__(self, connectors: list[_Connector]) -> None:
        self.containers = self
        self.connectors = connectors
        self.filters: dict[str, object] = {}

    def list(self, filters: dict[str, object]) -> list[_Connector]:
        self.filters = filters
        return self.connectors


def _edge(headers: list[tuple[str, str]]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.scheme == "https"
        return httpx.Response(200, headers=headers, text="Hello World")

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_tunnel_mode_passes_with_ready_connectors_and_an_answer_through_the_edge() -> None:
    connectors = [_Connector("zp-cloudflared-1", 0), _Connector("zp-cloudflared-2", 0)]
    edge = [*GOOD_HEADERS, ("server", "cloudflare"), ("cf-ray", "8f0c1d2e3f4a5b6c-AMS")]
    report = verify.verify_tunnel(
        _Engine(connectors),  # type: ignore[arg-type]
        stack_record(),
        "https://app.example.com",
        _edge(edge),
    )
    assert report.passed, _failed(report.checks)
    for connector in connectors:
        assert connector.commands == [
            ["cloudflared", "tunnel", "--metrics", "127.0.0.1:20241", "ready"]
        ]


def test_an_answer_without_cf_ray_did_not_come_through_cloudflare() -> None:
    report = verify.verify_tunnel(
        _Engine([_Connector("zp-cloudflared-1", 0)]),  # type: ignore[arg-type]
        stack_record(),
        "https://app.example.com",
        _edge(GOOD_HEADERS),
    )
    assert _failed(report.checks) == {"cf-ray header (answered by the edge)": "missing"}


def test_a_connector_without_an_edge_connection_fails_before_the_public_url_is_tried() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the public URL must not be fetched")

    ready = _Connector("zp-cloudflared-1", 0)
    not_ready = _Connector("zp-cloudflared-2", 1, b"http://127.0.0.1:20241/ready returned 503")
    report = verify.verify_tunnel(
        _Engine([ready, not_ready]),  # type: ignore[arg-type]
        stack_record(),
        "https://app.example.com",
        httpx.Client(transport=httpx.MockTransport(unreachable)),
    )
    assert _failed(report.checks) == {
        "zp-cloudflared-2 /ready": "http://127.0.0.1:20241/ready returned 503"
    }


def test_no_connector_running_is_a_failed_check() -> None:
    report = verify.verify_tunnel(
        _Engine([]),  # type: ignore[arg-type]
        stack_record(),
        "https://app.example.com",
        _edge(GOOD_HEADERS),
    )
    assert _failed(report.checks) == {"cloudflared replicas": "no cloudflared container runs"}


def test_cloudflareds_metrics_listen_on_its_loopback_where_both_probes_ask() -> None:
    # /debug and /config share the metrics server with /ready: bound to 127.0.0.1 inside
    # cloudflared's container, the app's network cannot reach them. The compose health check
    # and verify's exec both ask there, from inside the same container.
    compose = yaml.safe_load((paths.CONTAINERS / "compose.tunnel.yaml").read_text())
    cloudflared = compose["services"]["cloudflared"]

    def metrics(argv: list[str]) -> str:
        return argv[argv.index("--metrics") + 1]

    connector = _Connector("zp-cloudflared-1", 0)
    verify.connector_checks(_Engine([connector]), "zp")  # type: ignore[arg-type]

    listens = metrics(cloudflared["command"])
    assert listens.startswith("127.0.0.1:")
    assert metrics(cloudflared["healthcheck"]["test"]) == listens
    assert metrics(connector.commands[0]) == listens
