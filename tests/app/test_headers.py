"""Security headers: on every response, built from the settings, Server dropped."""

from __future__ import annotations

from drheader.core import Drheader

from app.config import Settings
from app.headers import SecurityHeaders, security_headers
from app.typing import Receive, Scope, Send
from tests.app.support import call, http_scope, make_service

EXPECTED = {
    b"strict-transport-security": b"max-age=63072000; includeSubDomains",
    b"content-security-policy": (
        b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-opener-policy": b"same-origin",
    b"cross-origin-resource-policy": b"same-origin",
    b"cross-origin-embedder-policy": b"require-corp",
    b"cache-control": b"no-store, max-age=0",
    b"x-permitted-cross-domain-policies": b"none",
    b"x-xss-protection": b"0",
}


def test_the_default_headers() -> None:
    headers = dict(security_headers(Settings()))

    assert {name: headers[name] for name in EXPECTED} == EXPECTED
    policy = headers[b"permissions-policy"].decode()
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


def test_the_headers_follow_every_owasp_recommendation_drheader_checks() -> None:
    # drHEADer's default ruleset is the OWASP Secure Headers Project's; `doit security` grades
    # a live response with it. Cross-origin isolation adds the COEP rule: it holds too.
    headers = {name.decode(): value.decode() for name, value in security_headers(Settings())}

    findings = Drheader(headers=headers).analyze(cross_origin_isolated=True)

    assert [(finding.rule, finding.message) for finding in findings] == []


def test_preload_and_csp_follow_the_settings() -> None:
    headers = dict(
        security_headers(Settings(hsts_preload=True, content_security_policy="default-src 'self'"))
    )

    assert headers[b"strict-transport-security"].endswith(b"; preload")
    assert headers[b"content-security-policy"] == b"default-src 'self'"


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"Server", b"hypercorn-h11"),
                (b"cache-control", b"max-age=60"),
                (b"content-type", b"text/plain"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def test_the_middleware_adds_the_headers_and_drops_server() -> None:
    app = SecurityHeaders(bare_app, security_headers(Settings()))

    exchange = await call(app, http_scope())

    names = [name.lower() for name, _ in exchange.headers]
    assert b"server" not in names
    assert exchange.header(b"x-frame-options") == b"DENY"
    assert exchange.header(b"content-type") == b"text/plain"
    assert exchange.body == b"ok"


async def test_a_header_the_app_set_is_kept_not_doubled() -> None:
    app = SecurityHeaders(bare_app, security_headers(Settings()))

    exchange = await call(app, http_scope())

    cache_control = [value for name, value in exchange.headers if name == b"cache-control"]
    assert cache_control == [b"max-age=60"]


async def test_quarts_own_error_pages_carry_them_too() -> None:
    service, _ = make_service()
    client = service.test_client()

    for response in (
        await client.get("/missing"),  # 404
        await client.post("/"),  # 405
        await client.options("/"),  # Quart's automatic OPTIONS answer
    ):
        assert response.headers["X-Frame-Options"] == "DENY", response.status_code
        assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")
        assert "Server" not in response.headers
