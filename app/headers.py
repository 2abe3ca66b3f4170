"""Security headers on every response the application sends, built once at start-up.

The values follow the OWASP Secure Headers Project's recommendations, which drHEADer's default
ruleset encodes and ``doit security`` grades a live response against.

:func:`security_headers` turns the settings into the header list; :class:`SecurityHeaders` is the
ASGI middleware that puts it on every ``http.response.start``: Quart's own 404/405/413/500
responses, the guards' 400/403/413/431 and the routes' answers alike. A header the application
set itself is kept (a route may need its own Cache-Control); a ``Server`` header never leaves.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.config import Settings
from app.typing import ASGIApp, HeaderList, Message, Receive, Scope, Send

HSTS_MAX_AGE = 2 * 365 * 24 * 60 * 60  # two years, in seconds, as the preload list requires

# Powerful features no page of this service needs; "()" is the empty allow-list.
DENIED_FEATURES = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "picture-in-picture",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "sync-xhr",
    "usb",
    "xr-spatial-tracking",
)


def security_headers(settings: Settings) -> HeaderList:
    """The headers every response carries, as ASGI (lower-case name, value) byte pairs."""
    hsts = f"max-age={HSTS_MAX_AGE}; includeSubDomains"
    if settings.hsts_preload:
        hsts += "; preload"
    headers = {
        "strict-transport-security": hsts,
        "content-security-policy": settings.content_security_policy,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "permissions-policy": ", ".join(f"{feature}=()" for feature in DENIED_FEATURES),
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "cross-origin-embedder-policy": "require-corp",
        # Every response here is dynamic; a route that serves something cacheable says so.
        # max-age=0 is for caches older than no-store (OWASP's recommended value).
        "cache-control": "no-store, max-age=0",
        # No Flash/PDF cross-domain policy file may grant access to this origin.
        "x-permitted-cross-domain-policies": "none",
        # Turns off the XSS auditor of old browsers, whose filtering could itself be abused;
        # the CSP is the protection (OWASP: "0", never "1; mode=block").
        "x-xss-protection": "0",
    }
    return [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]


class SecurityHeaders:
    """ASGI middleware adding ``headers`` to every HTTP response and dropping ``Server``."""

    def __init__(self, app: ASGIApp, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.app = app
        self._headers = [(name.lower(), value) for name, value in headers]
        self._names = frozenset(name for name, _ in self._headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.merge(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def merge(self, headers: Iterable[tuple[bytes, bytes]]) -> HeaderList:
        """``headers`` without ``Server``, plus each security header the app did not set."""
        merged: HeaderList = []
        seen: set[bytes] = set()
        for name, value in headers:
            lowered = bytes(name).lower()
            if lowered != b"server":
                merged.append((name, value))
                seen.add(lowered)
        if seen.isdisjoint(self._names):
            merged.extend(self._headers)
        else:
            merged.extend(header for header in self._headers if header[0] not in seen)
        return merged
