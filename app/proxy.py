"""The client's address behind trusted proxies, and only behind them.

Forwarding headers are whatever the previous hop wrote, so they are believed only when the
operator says how many proxies stand in front of the service (``APP_PROXY_HOPS``); with the
default of 0 this middleware is not installed at all and the client is the TCP peer.

- ``x-forwarded-for``: each proxy appends the address it saw, so with N trusted hops the client
  is the N-th value from the right; values further left are the client's own claims.
- ``cf-connecting-ip``: Cloudflare's edge overwrites it with the visitor's address, so behind
  Cloudflare (any hops >= 1) its single value is the client.

A value that is not an IP address is ignored, so the access log never records a client's
invention. Like Hypercorn's ``ProxyFixMiddleware``, the result replaces ``scope["client"]``;
unlike it, the scope is copied shallowly rather than deep-copied on every request.
"""

from __future__ import annotations

import ipaddress

from app.config import ClientIPHeader
from app.typing import ASGIApp, Receive, Scope, Send


def forwarded_client(
    headers: list[tuple[bytes, bytes]], *, hops: int, header: ClientIPHeader
) -> str | None:
    """The client address the trusted proxies report, or None when they report none."""
    name = header.encode("ascii")
    values: list[bytes] = []
    for header_name, value in headers:
        if header_name == name:
            values.extend(part.strip() for part in value.split(b","))
    if hops < 1 or not values:
        return None
    if header == "cf-connecting-ip":
        candidate = values[0] if len(values) == 1 else b""
    elif len(values) >= hops:
        candidate = values[-hops]
    else:
        return None
    try:
        return str(ipaddress.ip_address(candidate.decode("latin-1")))
    except ValueError:
        return None


class ClientIP:
    """ASGI middleware replacing ``scope["client"]`` with the address trusted proxies report."""

    def __init__(self, app: ASGIApp, *, hops: int, header: ClientIPHeader) -> None:
        self.app = app
        self.hops = hops
        self.header: ClientIPHeader = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = forwarded_client(scope["headers"], hops=self.hops, header=self.header)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
