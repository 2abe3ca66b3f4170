"""Idle keep-alive clients: many connections that ask once and then stay, saying nothing.

This is what a server meets behind connection pools and browsers: each connection asks
``GET /``, reads the whole answer, and is kept open, idle, for the hold; then all close. What
the server pays per idle connection (its memory) is what the hold measures. Connections open
a batch at a time, every step has a timeout, and the whole hold is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from typing import Final

#: Connections opened (and asked) at once while the hold builds up.
BATCH: Final = 500
#: Seconds one connection gets to connect and be answered.
TIMEOUT: Final = 10.0
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*([0-9]+)")


@dataclass(frozen=True, kw_only=True)
class IdleHold:
    """What one hold did."""

    wanted: int
    #: Connections that were answered 200 and then held open.
    held: int
    #: Connections that failed to connect, were not answered 200, or were closed by the server
    #: during the hold.
    errors: int
    #: Seconds it took to open and ask all of them.
    ramp: float


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _ask(host: str, port: int, payload: bytes) -> Connection | None:
    """One connection asked once and answered 200; None if it failed."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            if length is not None:
                await reader.readexactly(int(length.group(1)))
        if head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            return reader, writer
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    if writer is not None:  # connected, but not answered 200: let it go now, not at exit
        writer.close()
    return None


async def _hold(host: str, port: int, connections: int, seconds: float) -> IdleHold:
    payload = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")
    started = time.monotonic()
    held: list[Connection] = []
    failed = 0
    try:
        for first in range(0, connections, BATCH):
            batch = min(BATCH, connections - first)
            opened = await asyncio.gather(*(_ask(host, port, payload) for _ in range(batch)))
            held += [connection for connection in opened if connection is not None]
            failed += sum(1 for connection in opened if connection is None)
        ramp = time.monotonic() - started
        await asyncio.sleep(seconds)
        # A connection the server closed during the hold has seen its EOF by now.
        dropped = sum(1 for reader, _ in held if reader.at_eof())
    finally:
        for _, writer in held:
            writer.close()
        for _, writer in held:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return IdleHold(
        wanted=connections, held=len(held) - dropped, errors=failed + dropped, ramp=ramp
    )


def hold(host: str, port: int, *, connections: int, seconds: float) -> IdleHold:
    """Open ``connections`` to ``host:port``, ask each ``GET /`` once, keep them idle for
    ``seconds``, then close them all. The caller's open-files limit must allow it."""
    return asyncio.run(_hold(host, port, connections, seconds))
