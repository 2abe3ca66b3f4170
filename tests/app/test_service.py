"""The assembled service: middleware order, Quart tuned, every answer dressed the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Blueprint, Response, request
from quart.signals import request_tearing_down

from app.service import _may_have_body
from tests.app.support import Exchange, access_lines, call, http_scope, make_service


@pytest.mark.parametrize(
    ("headers", "http_version", "expected"),
    [
        ([(b"host", b"a")], "1.1", False),
        ([(b"host", b"a"), (b"content-length", b"0")], "1.1", False),
        ([(b"host", b"a"), (b"content-length", b"3")], "1.1", True),
        ([(b"host", b"a"), (b"transfer-encoding", b"chunked")], "1.1", True),
        ([(b"host", b"a")], "1.0", False),
        ([(b"host", b"a")], "2", True),  # HTTP/2 bodies need no header
    ],
)
def test_which_requests_may_have_a_body(
    headers: list[tuple[bytes, bytes]], http_version: str, expected: bool
) -> None:
    assert _may_have_body(http_scope(headers=headers, http_version=http_version)) is expected


async def echo(*body: bytes, **overrides: Any) -> Exchange:
    """A chunked POST of ``body`` to a handler that reads all of it and answers it."""
    service, _ = make_service(**overrides)

    async def echoing() -> bytes:
        return await request.get_data()

    service.add_url_rule("/echo", "echo", echoing, methods=["POST"])
    scope = http_scope(
        "/echo", method="POST", headers=[(b"host", b"a"), (b"transfer-encoding", b"chunked")]
    )
    return await call(service.stack, scope, list(body))


async def test_a_handler_reading_a_body_gets_all_of_it() -> None:
    exchange = await echo(b"hello ", b"world")

    assert (exchange.status, exchange.body) == (200, b"hello world")


async def test_a_body_over_the_limit_read_by_a_handler_is_413() -> None:
    exchange = await echo(b"12345", b"67890", max_body_bytes=8)

    assert exchange.status == 413


async def test_a_bodiless_request_is_answered_in_one_body_message() -> None:
    service, _ = make_service()

    exchange = await call(service.stack, http_scope())

    assert [m["type"] for m in exchange.messages] == ["http.response.start", "http.response.body"]
    assert exchange.messages[1] == {
        "type": "http.response.body",
        "body": b"Hello World",
        "more_body": False,
    }
    assert exchange.header(b"content-length") == b"11"


async def test_a_guards_refusal_still_gets_headers_an_id_and_a_log_line() -> None:
    service, log = make_service(max_header_bytes=1024, allowed_hosts=("example.com",))

    too_big = await call(
        service.stack, http_scope(headers=[(b"host", b"example.com"), (b"x-big", b"x" * 2000)])
    )
    foreign = await call(service.stack, http_scope(headers=[(b"host", b"evil.com")]))
    await asyncio.sleep(0)

    for exchange in (too_big, foreign):
        assert exchange.header(b"x-frame-options") == b"DENY"
        assert exchange.header(b"x-request-id") is not None
    assert [line["status"] for line in access_lines(log)] == [431, 400]


async def test_no_response_names_the_server_or_a_version() -> None:
    service, _ = make_service()

    for path, method in (("/", "GET"), ("/missing", "GET"), ("/", "POST"), ("/", "OPTIONS")):
        exchange = await call(service.stack, http_scope(path, method=method))
        text = b"\n".join(name + b": " + value for name, value in exchange.headers).lower()
        assert b"server" not in text
        assert b"quart" not in text + exchange.body.lower()
        assert b"hypercorn" not in text + exchange.body.lower()
        assert b"python" not in text + exchange.body.lower()


async def test_hooks_and_signals_the_app_registers_still_run_in_quarts_order() -> None:
    # The service skips Quart's hook walks while nothing is registered; these must then run.
    service, _ = make_service()
    calls: list[str] = []
    blueprint = Blueprint("shop", __name__)

    async def in_blueprint() -> str:
        calls.append("view")
        return "shop"

    blueprint.add_url_rule("/shop", "index", in_blueprint)
    blueprint.before_request(lambda: calls.append("blueprint before") and None)
    blueprint.teardown_request(lambda exc: calls.append("blueprint teardown"))
    service.register_blueprint(blueprint)
    service.url_value_preprocessor(lambda endpoint, values: calls.append("values"))

    @service.before_request
    async def before() -> None:
        calls.append("before")

    @service.after_request
    async def after(response: Response) -> Response:
        calls.append("after")
        return response

    @service.teardown_request
    def teardown(exc: BaseException | None) -> None:  # a sync hook: Quart runs it in a thread
        calls.append("teardown")

    @service.teardown_appcontext
    async def app_teardown(exc: BaseException | None) -> None:
        calls.append("app teardown")

    def on_tearing_down(sender: object, **extra: object) -> None:
        calls.append("signal")

    request_tearing_down.connect(on_tearing_down, service)
    try:
        exchange = await call(service.stack, http_scope("/shop"))
    finally:
        request_tearing_down.disconnect(on_tearing_down, service)

    assert (exchange.status, exchange.body) == (200, b"shop")
    assert calls == [
        "values",
        "before",
        "blueprint before",
        "view",
        "after",
        "blueprint teardown",
        "teardown",
        "signal",
        "app teardown",
    ]


async def test_a_sync_view_still_runs_through_quarts_executor() -> None:
    service, _ = make_service()
    service.add_url_rule("/sync", "sync", lambda: "from a thread")

    exchange = await call(service.stack, http_scope("/sync"))

    assert (exchange.status, exchange.body) == (200, b"from a thread")


async def test_a_response_with_a_timeout_of_its_own_is_cut_off_when_it_runs_out() -> None:
    service, _ = make_service()

    async def slow_stream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first "
            await asyncio.sleep(10)
            yield b"never"

        response = Response(chunks())
        response.timeout = 0.05
        return response

    service.add_url_rule("/slow", "slow", slow_stream)

    started = asyncio.get_running_loop().time()
    exchange = await call(service.stack, http_scope("/slow"))

    assert asyncio.get_running_loop().time() - started < 2
    assert exchange.status == 200
    assert exchange.body == b"first "
