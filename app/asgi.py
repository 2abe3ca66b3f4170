"""Small ASGI building blocks: plain-text status answers and a lifespan that only acknowledges.

The guards and the bare apps (metrics, ceiling) answer through :func:`send_status`, and Quart's
own error pages use the same :func:`status_body`, so a 413 reads the same whichever refused it.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from app.typing import HeaderList, Receive, Send


def status_body(status: int) -> bytes:
    """``b"404 Not Found\\n"``: the body of every error response the service sends."""
    return f"{status} {HTTPStatus(status).phrase}\n".encode("ascii")


async def send_status(
    send: Send,
    status: int,
    *,
    close: bool = False,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with ``status`` and its phrase as text; ``close`` ends the connection after it."""
    body = status_body(status)
    response_headers: HeaderList = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        *headers,
    ]
    if close:
        # The request body was not read, so the connection cannot carry another request.
        response_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def acknowledge_lifespan(receive: Receive, send: Send) -> None:
    """Serve an ASGI lifespan scope for an app with nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
