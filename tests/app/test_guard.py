"""The input guard: 431 for huge header blocks, 414 for long targets, 400 for foreign hosts and
ambiguous framing, 413 for huge bodies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app import guard as guard_module
from app.asgi import status_body
from app.config import Settings
from app.guard import InputGuard
from app.typing import Message, Receive, Scope, Send
from tests.app.support import (
    IO_TIMEOUT,
    LOCAL,
    Exchange,
    call,
    http_scope,
    parse_response,
    running_service,
)


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


async def answer_at_once_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 405 without reading the body, as Quart does for POST to a GET-only route."""
    await send({"type": "http.response.start", "status": 405, "headers": []})
    await send({"type": "http.response.body", "body": b"not here"})


def guard(app: Any = read_body_app, **options: object) -> InputGuard:
    settings: dict[str, object] = {
        "max_body_bytes": 100,
        "max_header_bytes": 1024,
        "max_url_bytes": 64,
    }
    settings.update(options)
    return InputGuard(app, **settings)  # type: ignore[arg-type]


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


async def test_a_target_within_the_url_limit_passes() -> None:
    scope = http_scope("/" + "u" * 40, headers=[(b"host", b"a")])
    scope["query_string"] = b"q=" + b"v" * 20

    assert (await call(guard(), scope)).status == 200


@pytest.mark.parametrize(
    ("path", "query"),
    [("/" + "u" * 64, b""), ("/search", b"q=" + b"v" * 60)],
    ids=["long-path", "long-query"],
)
async def test_a_target_over_the_url_limit_gets_414_and_close(path: str, query: bytes) -> None:
    scope = http_scope(path, headers=[(b"host", b"a")])
    scope["query_string"] = query

    exchange = await call(guard(), scope)

    assert exchange.status == 414
    assert exchange.header(b"connection") == b"close"
    assert exchange.body == status_body(414)


@pytest.mark.parametrize(
    "framing",
    [
        [(b"content-length", b"6"), (b"transfer-encoding", b"chunked")],
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"6")],
        [(b"content-length", b"6"), (b"content-length", b"6")],
        [(b"content-length", b"0"), (b"content-length", b"30")],
        [(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")],
    ],
    ids=["cl-te", "te-cl", "cl-cl-same", "cl-cl-different", "te-te"],
)
async def test_ambiguous_body_framing_gets_400_and_close_without_the_app(
    framing: list[tuple[bytes, bytes]],
) -> None:
    # RFC 9112 6.1 and 6.3: the server and a proxy before it may disagree on where such a body
    # ends, so what follows it could be a request the proxy never saw (request smuggling).
    scope = http_scope(method="POST", headers=[(b"host", b"a"), *framing])

    exchange = await call(guard(), scope, [b"0\r\n\r\n"])

    assert exchange.status == 400
    assert exchange.header(b"connection") == b"close"


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


async def test_an_early_answer_to_an_undeclared_body_over_the_limit_becomes_413() -> None:
    # The app refuses before reading: the answer waits for the body, which turns out too big.
    scope = http_scope(method="POST", headers=[(b"host", b"a"), (b"transfer-encoding", b"chunked")])

    exchange = await call(guard(answer_at_once_app), scope, [b"x" * 60, b"x" * 41, b"x" * 10])

    assert exchange.status == 413
    assert exchange.header(b"connection") == b"close"
    assert exchange.body == status_body(413)


async def test_an_early_answer_to_an_undeclared_body_within_the_limit_goes_out() -> None:
    scope = http_scope(method="POST", headers=[(b"host", b"a"), (b"transfer-encoding", b"chunked")])

    exchange = await call(guard(answer_at_once_app), scope, [b"x" * 60, b"x" * 40])

    assert (exchange.status, exchange.body) == (405, b"not here")
    assert exchange.messages[-1].get("more_body", False) is False


async def test_an_early_answer_waits_for_a_stalled_body_only_briefly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard_module, "HOLD_SECONDS", 0.05)
    monkeypatch.setattr(guard_module, "LINGER_SECONDS", 0.2)
    scope = http_scope(method="POST", headers=[(b"host", b"a"), (b"transfer-encoding", b"chunked")])
    sent: list[Message] = []
    answered = asyncio.Event()

    async def stalled_client() -> Message:
        if not sent and not answered.is_set():
            answered.set()  # one chunk, then nothing more: the body never ends
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}
        await asyncio.sleep(60)
        raise AssertionError("the guard waited for the body too long")

    async def record(message: Message) -> None:
        sent.append(message)

    app = guard(answer_at_once_app)
    await asyncio.wait_for(app(scope, stalled_client, record), IO_TIMEOUT)

    exchange = Exchange(sent)
    assert (exchange.status, exchange.body) == (405, b"not here")
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


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


async def test_a_huge_chunked_upload_gets_a_readable_413_like_a_declared_one() -> None:
    # The route refuses POST at once, but the body is over the limit: 413, as with a
    # Content-Length, and readable by a client that sends all 8 MiB before reading.
    async with running_service(Settings(host=LOCAL, port=0)) as running:  # 1 MiB limit
        chunk = b"10000\r\n" + b"y" * 0x10000 + b"\r\n"
        raw = await running.exchange(
            f"POST / HTTP/1.1\r\nHost: {LOCAL}\r\nConnection: close\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + chunk * 128  # 8 MiB, more than the socket buffers hold
            + b"0\r\n\r\n"
        )

        response = parse_response(raw)
        assert response.status == 413
        assert response.header("connection") == "close"
        assert response.header("x-frame-options") == "DENY"
        assert (await running.get("/healthz")).status == 200


async def test_a_request_hidden_behind_cl_te_is_never_served() -> None:
    async with running_service(Settings(host=LOCAL, port=0)) as running:
        raw = await running.exchange(  # reads until the service closes the connection
            f"POST / HTTP/1.1\r\nHost: {LOCAL}\r\nContent-Length: 6\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            f"GET /smuggled HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode()
        )

        assert raw.count(b"HTTP/1.1 ") == 1, raw
        response = parse_response(raw)
        assert response.status == 400
        assert response.header("connection") == "close"
        assert response.header("x-frame-options") == "DENY"
        assert "/smuggled" not in [line["path"] for line in running.access_lines()]
        assert (await running.get("/healthz")).status == 200


async def test_a_32_kib_target_gets_414_with_the_security_headers() -> None:
    async with running_service(Settings(host=LOCAL, port=0)) as running:
        response = await running.get("/" + "u" * (32 * 1024))

        assert response.status == 414
        assert response.header("connection") == "close"
        assert response.header("x-frame-options") == "DENY"
        assert (await running.get("/healthz")).status == 200
