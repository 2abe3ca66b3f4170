"""Canary: answers 200 ``Hello World`` to every request, on any path and method, with no
security headers. ``doit security`` and ``doit verify`` must fail it."""

from __future__ import annotations

import sys
from typing import Any

from app import server
from app.asgi import acknowledge_lifespan
from app.config import Settings
from app.lifecycle import Lifecycle

HELLO = b"Hello World"


async def everything_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await acknowledge_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": HELLO})


if __name__ == "__main__":
    lifecycle = Lifecycle()
    lifecycle.started()
    sys.exit(server.run(everything_ok, Settings.from_env(), lifecycle=lifecycle))
