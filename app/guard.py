"""Refuse oversized and misaddressed requests before the framework parses them.

In order: a header block over ``APP_MAX_HEADER_BYTES`` gets 431, a Host outside
``APP_ALLOWED_HOSTS`` (when set) gets 400, a body over ``APP_MAX_BODY_BYTES`` gets 413. The
size answers close the connection, since the rest of the request was never read.

Hypercorn (through h11) limits only the *incomplete* header block it buffers: a complete 40 KiB
head that arrives in one read passes. So the header limit is checked again here on what
arrived. A body is limited by its ``Content-Length`` up front, and counted as it streams in when
it has none (chunked HTTP/1.1, HTTP/2).
"""

from __future__ import annotations

from collections.abc import Iterable

from app.asgi import send_status
from app.typing import ASGIApp, Message, Receive, Scope, Send

# Bytes each header line costs on the wire beyond its name and value: ": " and CRLF.
_LINE_OVERHEAD = 4


class InputGuard:
    """ASGI middleware enforcing header size, allowed hosts and body size."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        allowed_hosts: Iterable[str] = (),
        open_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        hosts = [host.lower() for host in allowed_hosts]
        self._exact_hosts = frozenset(h.encode("idna") for h in hosts if h[0] not in "*.")
        self._host_suffixes = tuple(
            ("." + h.lstrip("*.")).encode("idna") for h in hosts if h[0] in "*."
        )
        self._check_host = bool(hosts)
        self._open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = 0
        length: bytes | None = None
        host: bytes | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + _LINE_OVERHEAD
            if name == b"content-length":
                length = value
            elif name == b"host":
                host = value
        if size > self.max_header_bytes:
            await send_status(send, 431, close=True)
        elif (
            self._check_host
            and scope["path"] not in self._open_paths
            and not self.host_allowed(host)
        ):
            await send_status(send, 400)
        elif length is not None:
            if not length.isdigit():
                await send_status(send, 400, close=True)
            elif int(length) > self.max_body_bytes:
                await send_status(send, 413, close=True)
            else:
                await self.app(scope, receive, send)
        else:
            await _CountedBody(self.app, self.max_body_bytes, send).run(scope, receive)

    def host_allowed(self, host: bytes | None) -> bool:
        """True when ``host`` (a Host header value, port and all) names an allowed host."""
        if not host:
            return False
        if host.startswith(b"["):  # an IPv6 literal: [::1]:8080
            name = host[: host.find(b"]") + 1]
        elif host.count(b":") == 1:  # name:port
            name = host.partition(b":")[0]
        else:
            name = host
        name = name.lower().rstrip(b".")
        return name in self._exact_hosts or name.endswith(self._host_suffixes)


class _CountedBody:
    """One request whose body has no declared length: count it and stop it at the limit."""

    def __init__(self, app: ASGIApp, limit: int, send: Send) -> None:
        self.app = app
        self.limit = limit
        self.server_send = send
        self.received = 0
        self.started = False
        self.refused = False

    async def run(self, scope: Scope, receive: Receive) -> None:
        async def counted_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    await self.refuse()
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted_receive, self.send)

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 has gone out (or the response was cut); the app's reply is moot
        if message["type"] == "http.response.start":
            self.started = True
        await self.server_send(message)

    async def refuse(self) -> None:
        # The app is told the client left, which ends Quart's handler; a response it had
        # already begun is cut short and the connection closed.
        self.refused = True
        if not self.started:
            await send_status(self.server_send, 413, close=True)
