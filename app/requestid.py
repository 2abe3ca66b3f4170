"""Request ids: echo a well-formed incoming ``X-Request-ID``, else make one up.

The id goes into the scope (``app.request_id``) for the access log, into a context variable for
any log line written while the request runs, and back to the client in ``X-Request-ID``. Only
ids of 1-128 characters from ``A-Z a-z 0-9 . _ : -`` are echoed, so nothing a client sends can
break a log line or a response header.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from app.typing import REQUEST_ID_KEY, ASGIApp, Message, Receive, Scope, Send

WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

#: The id of the request the current task serves; None outside a request.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def new_request_id() -> str:
    """A fresh random id: 32 hex digits, like a UUID without dashes.

    An id labels a request; it is no secret, so it comes from ``random`` rather than from
    ``os.urandom`` and a system call per request. (``random`` reseeds itself in forked
    workers, so workers do not repeat each other's ids.)
    """
    return f"{random.getrandbits(128):032x}"


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The client's ``X-Request-ID`` if it is well-formed, else None."""
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode("ascii") if WELL_FORMED.fullmatch(value) else None
    return None


class RequestId:
    """ASGI middleware giving every HTTP request an id and echoing it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope["headers"]) or new_request_id()
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = current_request_id.set(request_id)
        try:
            await self.app({**scope, REQUEST_ID_KEY: request_id}, receive, send_with_id)
        finally:
            current_request_id.reset(token)
