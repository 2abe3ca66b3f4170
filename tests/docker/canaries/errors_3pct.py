"""Canary: the real service, except that 3 % of its answers (every 33rd request) are 500.
``doit bench`` must fail it, although it answers as fast as the real one."""

from __future__ import annotations

import itertools
import sys
from typing import Any

from app import server
from app.config import Settings
from app.service import create_app

settings = Settings.from_env()
service = create_app(settings)
counter = itertools.count(1)


async def mostly_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/" and next(counter) % 33 == 0:
        await send(
            {"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    await service.stack(scope, receive, send)


if __name__ == "__main__":
    sys.exit(server.run(mostly_ok, settings, lifecycle=service.lifecycle))
