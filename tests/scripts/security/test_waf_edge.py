"""The WAF proven at the edge: Cloudflare's block answers pass, anything else fails (no network).

The edge's answers below are shaped as Cloudflare documents them:

* a custom rule's Block: HTTP 403 by default (developers.cloudflare.com/waf/custom-rules/
  create-dashboard/, "Configure a custom response for blocked requests"), Cloudflare's
  "Sorry, you have been blocked" page with its Ray ID;
* a rate-limiting rule's Block: HTTP 429 by default (developers.cloudflare.com/waf/
  rate-limiting-rules/parameters/, "With response code"), error 1015 "You are being rate
  limited" (developers.cloudflare.com/support/troubleshooting/http-status-codes/
  cloudflare-1xxx-errors/error-1015/), with ``Retry-After: 30`` (developers.cloudflare.com/
  changelog/post/2026-03-12-retry-after-header-for-1xxx-errors/);
* every answer through Cloudflare carries ``cf-ray`` and ``server: cloudflare``
  (developers.cloudflare.com/fundamentals/reference/cloudflare-ray-id/); the origin's own
  answers also carry the service's ``x-request-id``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from scripts.core.records import StackRecord
from scripts.security import run as security
from scripts.security import waf_edge
from scripts.security.run import SecurityReport, waf_section
from tests.scripts.conftest import stack_record
from tunnel.spec import TunnelSpec, load_spec

SPEC = load_spec(Path(__file__).resolve().parents[3] / "tunnel.yaml")
_rays = (f"8f0c1d2e3f4a{n:04x}-AMS" for n in itertools.count())

BLOCK_PAGE = (
    "<!DOCTYPE html><title>Attention Required! | Cloudflare</title>"
    "<h1>Sorry, you have been blocked</h1><h2>You are unable to access app.example.com</h2>"
    "<p>Cloudflare Ray ID: <strong>8f0c1d2e3f4a5b6c</strong></p>"
)
RATE_LIMIT_PAGE = (
    "<!DOCTYPE html><title>Access denied | app.example.com used Cloudflare to restrict "
    "access</title><h1>Error 1015</h1><h2>You are being rate limited</h2>"
)


def edge(status: int, body: str, **headers: str) -> httpx.Response:
    """An answer made by Cloudflare's edge itself."""
    base = {"server": "cloudflare", "cf-ray": next(_rays), "content-type": "text/html"}
    return httpx.Response(status, text=body, headers={**base, **headers})


def origin(status: int, body: str = "Hello World") -> httpx.Response:
    """An answer of the service, passed through the edge."""
    return edge(status, body, **{"x-request-id": "01J0000000000000000000000"})


def cloudflare(
    dotfile: Callable[[], httpx.Response], root: Callable[[int], httpx.Response]
) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose requests reach a scripted edge; the list records them."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "app.example.com"
        assert request.url.scheme == "https"
        seen.append(request)
        if request.url.path == "/.env":
            return dotfile()
        roots = sum(1 for r in seen if r.url.path == "/")
        return root(roots)

    return httpx.Client(transport=httpx.MockTransport(answer)), seen


def deployed_rules() -> Callable[[int], httpx.Response]:
    """The shipped rate limit as deployed: 50 requests pass, then 1015."""
    limit = SPEC.rate_limits[0].ratelimit
    assert limit is not None
    return lambda n: (
        origin(200)
        if n <= limit.requests_per_period
        else edge(429, RATE_LIMIT_PAGE, **{"retry-after": "30"})
    )


def by_id(checks: list[security.Check]) -> dict[str, security.Check]:
    return {check.id: check for check in checks}


def test_deployed_rules_pass_only_on_cloudflares_own_answers() -> None:
    client, seen = cloudflare(lambda: edge(403, BLOCK_PAGE), deployed_rules())

    checks = by_id(waf_edge.edge_checks(client, SPEC))

    assert all(check.ok for check in checks.values()), checks
    assert checks["WAF-EDGE-DOTFILE"].evidence.startswith(
        "GET https://app.example.com/.env: 403, cf-ray 8f0c1d2e3f4a"
    )
    assert checks["WAF-EDGE-RATE-LIMIT"].evidence.startswith(
        "request 51 of GET https://app.example.com/ answered 429, cf-ray"
    )
    assert len(seen) == 1 + 51


def test_rules_that_are_not_deployed_fail_after_a_bounded_burst() -> None:
    client, seen = cloudflare(lambda: origin(404, "Not Found"), lambda n: origin(200))

    checks = by_id(waf_edge.edge_checks(client, SPEC))

    assert not checks["WAF-EDGE-DOTFILE"].ok
    assert "404, cf-ray" in checks["WAF-EDGE-DOTFILE"].evidence
    assert "from the origin (x-request-id" in checks["WAF-EDGE-DOTFILE"].evidence
    limit = SPEC.rate_limits[0].ratelimit
    assert limit is not None
    burst = waf_edge.BURST_FACTOR * limit.requests_per_period + 1
    assert len(seen) == 1 + burst
    assert not checks["WAF-EDGE-RATE-LIMIT"].ok
    assert checks["WAF-EDGE-RATE-LIMIT"].evidence.startswith(
        f"{burst} requests to https://app.example.com/ within 60 s, none refused by the edge "
        f"({burst}x 200)"
    )


def test_a_403_from_the_origin_is_not_the_edges_block() -> None:
    # The service answers 403 itself when the Access check refuses a request.
    client, _ = cloudflare(lambda: origin(403, "Forbidden"), deployed_rules())

    check = by_id(waf_edge.edge_checks(client, SPEC))["WAF-EDGE-DOTFILE"]

    assert not check.ok


def test_an_answer_without_cf_ray_did_not_come_from_cloudflare() -> None:
    client, _ = cloudflare(lambda: httpx.Response(403, text="blocked"), deployed_rules())

    assert not by_id(waf_edge.edge_checks(client, SPEC))["WAF-EDGE-DOTFILE"].ok


def test_the_burst_stops_at_its_time_limit() -> None:
    client, seen = cloudflare(lambda: edge(403, BLOCK_PAGE), lambda n: origin(200))

    check = by_id(waf_edge.edge_checks(client, SPEC, burst_seconds=0.0))["WAF-EDGE-RATE-LIMIT"]

    assert not check.ok
    assert len(seen) <= 2


def test_tunnel_mode_with_no_rules_deployed_fails_instead_of_passing() -> None:
    bare = TunnelSpec(
        tunnel="t", zone="example.com", hostname="app.example.com", service="http://app:8080"
    )
    client, seen = cloudflare(lambda: origin(404), lambda n: origin(200))
    report = SecurityReport(target="t", image="i", platform="p", started="s")

    checks = by_id(waf_section(report, bare, edge=client))

    assert [c for c in checks if c.startswith("WAF-EDGE")] == [
        "WAF-EDGE-RULES",
        "WAF-EDGE-DOTFILE",
        "WAF-EDGE-RATE-LIMIT",
    ]
    assert not any(checks[c].ok for c in checks if c.startswith("WAF-EDGE"))
    assert checks["WAF-EDGE-RULES"].evidence.startswith("no rules deployed")
    assert seen == []


def test_local_mode_has_no_edge_and_says_so() -> None:
    report = SecurityReport(target="t", image="i", platform="p", started="s")

    checks = waf_section(report, SPEC)

    assert not [c for c in checks if c.id.startswith("WAF-EDGE")]
    assert report.notes == [waf_edge.NO_EDGE]
    assert "local mode has no edge" in waf_edge.NO_EDGE


@pytest.mark.parametrize(("mode", "edge_expected"), [("tunnel", True), ("local", False)])
def test_the_edge_is_tested_only_when_the_deployed_stack_is_in_tunnel_mode(
    monkeypatch: pytest.MonkeyPatch, mode: str, edge_expected: bool
) -> None:
    record = stack_record(mode=mode)
    monkeypatch.setattr(StackRecord, "read", classmethod(lambda cls: record))

    assert security.tunnel_deployed() is edge_expected


def test_nothing_deployed_means_no_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(cls: object) -> object:
        raise security.ReportError("build/stack.json is missing")

    monkeypatch.setattr(StackRecord, "read", classmethod(missing))

    assert security.tunnel_deployed() is False
