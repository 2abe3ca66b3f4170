"""The server's ceiling: a bare ASGI app sending what ``GET /`` sends, with no framework.

Served by the same in-process Hypercorn setup as the service (``python -m app.ceiling``, same
``APP_*`` settings), it answers every request with the same status, body and headers as the
service's ``GET /`` (a fresh X-Request-ID included). The gap between it and the service is what
Quart and the service's middleware cost; the benchmark uses it to calibrate, and it ships in
the image so a container benchmark can too. It serves no health endpoints and logs no requests:
do not deploy it.
"""

from __future__ import annotations

import argparse
import sys

from app import server
from app.asgi import acknowledge_lifespan
from app.config import Settings
from app.errors import StartupError
from app.headers import security_headers
from app.lifecycle import Lifecycle
from app.requestid import new_request_id
from app.typing import HeaderList, Receive, Scope, Send

HELLO = b"Hello World"


class Ceiling:
    """ASGI app answering ``200 Hello World`` with the service's headers to every request."""

    def __init__(self, settings: Settings) -> None:
        self._headers: HeaderList = [
            (b"content-length", str(len(HELLO)).encode("ascii")),
            (b"content-type", b"text/plain; charset=utf-8"),
            *security_headers(settings),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = [*self._headers, (b"x-request-id", new_request_id().encode("ascii"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": HELLO, "more_body": False})


def main(argv: list[str] | None = None) -> int:
    """Serve the ceiling app until SIGTERM or SIGINT; exit 2 when it cannot start."""
    parser = argparse.ArgumentParser(
        prog="python -m app.ceiling",
        description="Serve the benchmark ceiling (a bare ASGI hello world) as APP_* say.",
    )
    parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        from app import logging

        logging.configure(settings.log_level)
        return server.run(Ceiling(settings), settings, lifecycle=Lifecycle())
    except StartupError as error:
        sys.stderr.write(f"{error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
