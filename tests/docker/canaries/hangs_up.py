"""Canary: the real service, except that where it should refuse with 405, 413, 414 or 431 it
hangs up without a word. ``doit security`` must fail it."""

from __future__ import annotations

import sys
from typing import Any

from hypercorn.events import Closed
from hypercorn.protocol.events import Response
from hypercorn.protocol.h11 import H11Protocol

from app.__main__ import main

REFUSALS = {405, 413, 414, 431}
_stream_send = H11Protocol.stream_send
_send_error_response = H11Protocol._send_error_response


async def stream_send(self: H11Protocol, event: Any) -> None:
    if isinstance(event, Response) and event.status_code in REFUSALS:
        await self.send(Closed())
        return
    await _stream_send(self, event)


async def send_error_response(self: H11Protocol, status_code: int) -> None:
    if status_code in REFUSALS:
        await self.send(Closed())
        return
    await _send_error_response(self, status_code)


H11Protocol.stream_send = stream_send  # type: ignore[method-assign]
H11Protocol._send_error_response = send_error_response  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main([]))
