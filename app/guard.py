"""Refuse oversized, misaddressed and ambiguous requests before the framework parses them.

In order: a header block over ``APP_MAX_HEADER_BYTES`` gets 431, a request target (path and
query) over ``APP_MAX_URL_BYTES`` gets 414, a Host outside ``APP_ALLOWED_HOSTS`` (when set) gets
400, ambiguous body framing gets 400, a body over ``APP_MAX_BODY_BYTES`` gets 413.

Hypercorn (through h11) limits only the *incomplete* head it buffers: a complete 40 KiB head
that arrives in one read passes. So the limits are checked again here on what arrived.

Ambiguous framing is a Content-Length with a Transfer-Encoding, or either twice. A proxy in
front may read such a body's end elsewhere than this server does, and what it took for body
would be served here as a request it never saw (request smuggling). RFC 9112 6.1 lets a server
reject such a message and requires it to close the connection after answering: so 400, and
the connection closes with whatever was pipelined behind the request unread.

A body is limited by its ``Content-Length`` up front, and counted as it streams in when it has
none (chunked HTTP/1.1, HTTP/2). An answer the app gives to such a body before it has all
arrived (a 405 to an upload, say) is held back until the body ends, overflows (then the
answer is a 413, as it would have been with a Content-Length), or HOLD_SECONDS pass.

An answer given before the body was read (a 413, or a 405 to an upload) ends with the
connection closing. Closing a socket with unread data in it makes the kernel send a reset,
which can destroy the answer before the client reads it; so, like nginx's lingering close, the
rest of the body is read and dropped (up to LINGER_BYTES, for at most LINGER_SECONDS) before the
response ends and the connection closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from app.asgi import send_status, status_body
from app.config import KIB, MIB, SECONDS
from app.typing import ASGIApp, Message, Receive, Scope, Send

# Bytes each header line costs on the wire beyond its name and value: ": " and CRLF.
_LINE_OVERHEAD: Final = 4
_HTTP1: Final = frozenset({"1.0", "1.1"})
_NO_BODY: Final = frozenset({None, b"0"})
#: Most of a refused body read and dropped before the connection closes.
LINGER_BYTES: Final = 16 * MIB
#: Longest a refused body is read for before the connection closes.
LINGER_SECONDS: Final = 5 * SECONDS
#: Longest an answer given before an undeclared body ended waits for it to end or overflow.
HOLD_SECONDS: Final = 1 * SECONDS
#: Most of such an answer held back; a longer answer goes out as it comes.
HOLD_BYTES: Final = 64 * KIB


class InputGuard:
    """ASGI middleware enforcing header, target and body size, allowed hosts and framing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        max_url_bytes: int,
        allowed_hosts: Iterable[str] = (),
        open_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_url_bytes = max_url_bytes
        hosts = [host.lower() for host in allowed_hosts]
        self._exact_hosts = frozenset(h.encode("ascii") for h in hosts if h[0] not in "*.")
        self._host_suffixes = tuple(
            ("." + h.lstrip("*.")).encode("ascii") for h in hosts if h[0] in "*."
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
        chunked = False
        ambiguous = False  # two framings, or one twice: where the body ends is unclear
        for name, value in scope["headers"]:
            size += len(name) + len(value) + _LINE_OVERHEAD
            if name == b"content-length":
                ambiguous = ambiguous or length is not None or chunked
                length = value
            elif name == b"host":
                host = value
            elif name == b"transfer-encoding":
                ambiguous = ambiguous or length is not None or chunked
                chunked = True
        if size > self.max_header_bytes:
            await refuse(receive, send, 431)
        elif len(scope["raw_path"]) + len(scope["query_string"]) > self.max_url_bytes:
            await refuse(receive, send, 414)
        elif (
            self._check_host
            and scope["path"] not in self._open_paths
            and not self.host_allowed(host)
        ):
            await send_status(send, 400)
        elif ambiguous or (length is not None and not length.isdigit()):
            await refuse(receive, send, 400)
        elif length is not None and int(length) > self.max_body_bytes:
            await refuse(receive, send, 413)
        elif chunked or length not in _NO_BODY or scope["http_version"] not in _HTTP1:
            watched = _WatchedBody(self.app, self.max_body_bytes, receive, send)
            await watched.run(scope, declared=length is not None)
        else:  # HTTP/1.x with neither Content-Length nor Transfer-Encoding: there is no body
            await self.app(scope, receive, send)

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


async def refuse(receive: Receive, send: Send, status: int) -> None:
    """Answer ``status`` and close, reading what is left of the request body first."""
    await start_refusal(send, status)
    await linger(receive)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def start_refusal(send: Send, status: int) -> None:
    """Send the refusal's head and text but not its end, which would close the connection."""
    body = status_body(status)
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def linger(receive: Receive) -> None:
    """Read and drop the request body until it ends, or LINGER_BYTES / LINGER_SECONDS pass."""
    drained = 0
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            while drained <= LINGER_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


class _WatchedBody:
    """One request with a body: count it, stop it at the limit, never close on unread bytes.

    - Over the limit before any of the app's answer went out: the client gets 413, the app
      hears that the client left (which ends Quart's handler).
    - Over the limit after the app's answer began to go out: the app hears the client left; an
      answer it already finished still goes out, one it was still sending is cut short.
    - An answer begun while an undeclared body is still arriving is held (up to HOLD_BYTES)
      until the body ends, overflows or HOLD_SECONDS pass; see the module docstring.
    - An answer finished while the client is still sending: its end is held back, and the app
      told the exchange is over, until the rest of the body has been read and dropped, so that
      closing the connection cannot destroy the answer.

    Only :meth:`run` sends anything of its own, never :meth:`receive`: Quart reads the body in
    a task that it cancels once the handler is done, which could cut a send short.
    """

    def __init__(self, app: ASGIApp, limit: int, receive: Receive, send: Send) -> None:
        self.app = app
        self.limit = limit
        self.server_receive = receive
        self.server_send = send
        self.received = 0
        self.body_done = False  # the client sent all of its body (or left)
        self.client_gone = False
        self.refused = False  # over the limit: the app hears a disconnect
        self.holding = False  # the app's answer waits for the body, in held
        self.held: list[Message] = []
        self.held_bytes = 0
        self.forwarded = False  # part of the app's answer went out
        self.end_held = False  # the app finished its answer; its end waits for the body

    async def run(self, scope: Scope, *, declared: bool) -> None:
        """Serve ``scope``; ``declared``: the body's length was given, so it cannot overflow."""
        self.holding = not declared
        await self.app(scope, self.receive, self.send)
        if self.held and not (self.body_done or self.refused):
            await self.await_body()
        if self.client_gone:
            return
        if self.refused and not self.forwarded:
            await start_refusal(self.server_send, 413)
            self.end_held = True
        else:
            await self.release()
        if self.end_held:
            if not self.body_done:
                await linger(self.server_receive)
            await self.server_send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive(self) -> Message:
        if self.refused or self.end_held:
            return {"type": "http.disconnect"}
        message = await self.server_receive()
        self.count(message)
        return {"type": "http.disconnect"} if self.refused else message

    async def send(self, message: Message) -> None:
        if self.refused and not self.forwarded:
            return  # the answer is a 413, which run() sends
        if (
            message["type"] == "http.response.body"
            and not message.get("more_body", False)
            and not self.body_done
        ):
            self.end_held = True
            message = {**message, "more_body": True}
        if self.holding and not self.body_done:
            self.held_bytes += len(message.get("body", b""))
            if self.held_bytes <= HOLD_BYTES:
                self.held.append(message)
                return
        await self.release()
        await self.server_send(message)
        self.forwarded = True

    def count(self, message: Message) -> None:
        """Note what ``message`` from the server says about the body."""
        if message["type"] == "http.disconnect":
            self.body_done = self.client_gone = True
        elif message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
            if self.received > self.limit:
                self.refused = True

    async def await_body(self) -> None:
        """Read the body until it ends or overflows, for at most HOLD_SECONDS."""
        try:
            async with asyncio.timeout(HOLD_SECONDS):
                while not (self.body_done or self.refused):
                    self.count(await self.server_receive())
        except TimeoutError:
            return

    async def release(self) -> None:
        """Send what was held of the app's answer, and hold nothing more."""
        self.holding = False
        held, self.held = self.held, []
        for message in held:
            await self.server_send(message)
            self.forwarded = True
