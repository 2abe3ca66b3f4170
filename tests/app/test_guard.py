"""The input guard: 431 for huge header blocks, 400 for foreign hosts, 413 for huge bodies."""

from __future__ import annotations

import pytest

from app.asgi import status_body
from app.config import Settings
from app.guard import InputGuard
from app.typing import Receive, Scope, Send
from tests.app.support import LOCAL, call, http_scope, parse_response, running_service


async def read_body_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def guard(**options: object) -> InputGuard:
    settings: dict[str, object] = {"max_body_bytes": 100, "max_header_bytes": 1024}
    settings.update(options)
    return InputGuard(read_body_app, **settings)  # type: ignore[arg-type]


async def test_a_request_within_every_limit_passes() -> None:
    scope = http_scope(method="POST", headers=[(b"host", b"a"), (b"content-length", b"5")])

    exchange = await call(guard(), scope, [b"hello"])

    assert (exchange.status, exchange.body) == (200, b"5")


async def test_a_header_block_over_the_limit_gets_431_and_close() -> None:
    scope = http_scope(headers=[(b"host", b"a"), (b"x-big", b"x" * 1100)])

    exchange = await call(guard(), scope)

    assert exchange.status == 431
    assert exchange.header(b"connection") == b"close"
    assert exchange.body == b"431 Request Header Fields Too Large\n"


async def test_a_declared_body_over_the_limit_gets_413_without_the_app() -> None:
    scope = http_scope(method="POST", headers=[(b"host", b"a"), (b"content-length", b"101")])

    exchange = await call(guard(), scope, [b"x" * 50, b"x" * 51])

    assert exchange.status == 413
    assert exchange.header(b"connection") == b"close"
    assert exchange.body == status_body(413)
    assert exchange.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_malformed_content_length_gets_400() -> None:
    scope = http_scope(method="POST", headers=[(b"host", b"a"), (b"content-length", b"-1")])

    assert (await call(guard(), scope)).status == 400


@pytest.mark.parametrize("http_version", ["1.1", "2"])
async def test_an_undeclared_body_is_counted_and_stopped_at_the_limit(http_version: str) -> None:
    headers = [(b"host", b"a")]
    if http_version == "1.1":
        headers.append((b"transfer-encoding", b"chunked"))
    scope = http_scope(method="POST", headers=headers, http_version=http_version)

    within = await call(guard(), scope, [b"x" * 60, b"x" * 40])
    over = await call(guard(), scope, [b"x" * 60, b"x" * 41, b"x" * 10])

    assert (within.status, within.body) == (200, b"100")
    assert over.status == 413
    assert over.body == status_body(413)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (b"example.com", True),
        (b"EXAMPLE.com:8443", True),
        (b"example.com.", True),
        (b"evil.com", False),
        (b"example.com.evil.com", False),
        (b"a.example.org", True),
        (b"a.b.example.org", True),
        (b"example.org", False),  # a wildcard covers subdomains, not the apex
        (b"127.0.0.1:8080", True),
        (b"[::1]:8080", True),
        (b"[::2]", False),
        (b"", False),
    ],
)
async def test_only_allowed_hosts_are_served(host: bytes, allowed: bool) -> None:
    app = guard(allowed_hosts=("example.com", "*.example.org", "127.0.0.1", "[::1]"))

    exchange = await call(app, http_scope(headers=[(b"host", host)]))

    assert exchange.status == (200 if allowed else 400)


async def test_a_request_without_host_is_refused_when_hosts_are_listed() -> None:
    app = guard(allowed_hosts=("example.com",))

    assert (await call(app, http_scope(headers=[]))).status == 400


async def test_health_paths_answer_any_host_so_the_probe_works() -> None:
    app = guard(allowed_hosts=("example.com",), open_paths=("/healthz",))

    probe = await call(app, http_scope("/healthz", headers=[(b"host", b"127.0.0.1:8080")]))
    other = await call(app, http_scope("/", headers=[(b"host", b"127.0.0.1:8080")]))

    assert (probe.status, other.status) == (200, 400)


# --- over a real connection ---------------------------------------------------------------------


async def test_a_huge_body_gets_a_readable_413_and_the_service_stays_up() -> None:
    # 8 MiB overflows the socket buffers: a client that sends all of it before reading gets the
    # 413 only because the service reads (and drops) the body before it closes the connection.
    async with running_service(Settings(host=LOCAL, port=0)) as running:
        body = b"x" * (8 * 1024 * 1024)
        head = (f"POST / HTTP/1.1\r\nHost: {LOCAL}\r\nContent-Length: {len(body)}\r\n\r\n").encode()

        raw = await running.exchange(head + body)

        response = parse_response(raw)
        assert response.status == 413
        assert response.header("connection") == "close"
        assert response.body == status_body(413)
        assert (await running.get("/healthz")).status == 200


async def test_a_huge_chunked_upload_still_gets_a_readable_answer() -> None:
    # The route refuses POST at once, so 405 usually wins the race with the 413; either way
    # the client, which sends all 8 MiB before reading, must be able to read the answer.
    async with running_service(Settings(host=LOCAL, port=0, max_body_bytes=1000)) as running:
        chunk = b"10000\r\n" + b"y" * 0x10000 + b"\r\n"
        raw = await running.exchange(
            f"POST / HTTP/1.1\r\nHost: {LOCAL}\r\nConnection: close\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + chunk * 128  # 8 MiB, more than the socket buffers hold
            + b"0\r\n\r\n"
        )

        assert parse_response(raw).status in {405, 413}
        assert (await running.get("/healthz")).status == 200
