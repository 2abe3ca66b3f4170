"""The small ASGI pieces: plain status answers and a lifespan that acknowledges."""

from __future__ import annotations

import asyncio
from typing import Any

from app.asgi import acknowledge_lifespan, send_status, status_body


def test_status_bodies_are_code_and_phrase() -> None:
    assert status_body(404) == b"404 Not Found\n"
    assert status_body(431) == b"431 Request Header Fields Too Large\n"


async def test_send_status_answers_plain_text_with_its_length() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await send_status(send, 405, headers=[(b"allow", b"GET")], close=True)

    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 405
    assert headers[b"content-length"] == str(len(body["body"])).encode()
    assert headers[b"allow"] == b"GET"
    assert headers[b"connection"] == b"close"
    assert body["body"] == b"405 Method Not Allowed\n"


async def test_the_lifespan_acknowledges_start_up_and_shutdown() -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": kind})
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await asyncio.wait_for(acknowledge_lifespan(inbox.get, send), 5)

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
