"""Request ids: a well-formed incoming X-Request-ID is echoed, anything else is replaced."""

from __future__ import annotations

import io
import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.requestid import RequestId, current_request_id
from app.typing import REQUEST_ID_KEY, Receive, Scope, Send
from tests.app.support import call, http_scope, log_entries

GENERATED = re.compile(rb"[0-9a-f]{32}")


async def echo_scope_id(scope: Scope, receive: Receive, send: Send) -> None:
    seen = f"{scope[REQUEST_ID_KEY]}|{current_request_id.get()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": seen})


def with_id(value: bytes) -> dict[str, object]:
    return http_scope(headers=[(b"host", b"example.com"), (b"x-request-id", value)])


async def test_a_well_formed_id_is_echoed_and_visible_to_the_app() -> None:
    exchange = await call(RequestId(echo_scope_id), with_id(b"cf-8f12ab:req_01.A"))

    assert exchange.header(b"x-request-id") == b"cf-8f12ab:req_01.A"
    assert exchange.body == b"cf-8f12ab:req_01.A|cf-8f12ab:req_01.A"


@pytest.mark.parametrize(
    "value",
    [
        b"abc\r\nSet-Cookie: evil=1",
        b"has space",
        b"x" * 129,
        b"",
        b"<script>",
        "caf\u00e9".encode(),
    ],
)
async def test_anything_else_is_replaced_by_a_fresh_id(value: bytes) -> None:
    exchange = await call(RequestId(echo_scope_id), with_id(value))

    request_id = exchange.header(b"x-request-id")
    assert request_id is not None
    assert GENERATED.fullmatch(request_id)
    assert exchange.body == request_id + b"|" + request_id


async def test_each_request_without_an_id_gets_its_own() -> None:
    app = RequestId(echo_scope_id)

    ids = {(await call(app, http_scope())).header(b"x-request-id") for _ in range(20)}

    assert len(ids) == 20
    assert all(GENERATED.fullmatch(i or b"") for i in ids)


async def test_the_id_is_cleared_after_the_request() -> None:
    await call(RequestId(echo_scope_id), with_id(b"abc"))

    assert current_request_id.get() is None


async def test_lifespan_passes_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await RequestId(app)(scope, _never, _discard)

    assert seen == [scope]


async def _never() -> dict[str, object]:
    raise AssertionError("not called")


async def _discard(message: object) -> None:
    raise AssertionError("not called")


@given(st.binary(max_size=200))
async def test_no_client_value_can_put_anything_unsafe_in_the_header(value: bytes) -> None:
    exchange = await call(RequestId(echo_scope_id), with_id(value))

    echoed = exchange.header(b"x-request-id") or b""
    assert re.fullmatch(rb"[A-Za-z0-9._:-]{1,128}", echoed)
    assert echoed == value or GENERATED.fullmatch(echoed)


def test_log_lines_written_during_a_request_carry_its_id(json_logs: io.StringIO) -> None:
    token = current_request_id.set("req-42")
    try:
        logging.getLogger("app.test").warning("inside")
    finally:
        current_request_id.reset(token)
    logging.getLogger("app.test").warning("outside")

    entries = log_entries(json_logs)
    assert [(e["message"], e.get("request_id")) for e in entries] == [
        ("inside", "req-42"),
        ("outside", None),
    ]
