"""Cloudflare Access at the origin: every request must carry a valid Access JWT, or gets 403.

Behind a tunnel with an Access application, Cloudflare adds ``Cf-Access-Jwt-Assertion`` to each
request it lets through. Checking it here means a request that reached the origin some other
way (a misrouted hostname, a leaked tunnel token) is refused too. The token must be RS256,
signed by a key in the team's JWKS (``https://<team>.cloudflareaccess.com/cdn-cgi/access/certs``),
issued by the team domain, for one of the application's AUD tags, and not expired. The health
endpoints stay open so the container's probe works without a token.

Installed only when ``APP_ACCESS_TEAM`` and ``APP_ACCESS_AUD`` are set, and PyJWT is imported
only then: PyJWT with cryptography (the ``access`` extra, ~12 MB) is not in the default image,
and a service configured for Access without it stops at start-up (exit 2, one line).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from app.asgi import send_status
from app.errors import AccessDenied, KeysUnavailable, MissingExtra
from app.typing import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

TOKEN_HEADER: Final = b"cf-access-jwt-assertion"
CERTS_PATH: Final = "/cdn-cgi/access/certs"
SECONDS: Final = 1.0
#: How long fetched keys are used before they are fetched again.
KEYS_TTL: Final = 60 * 60 * SECONDS
#: An unknown key id refetches the keys (Cloudflare rotates them), at most this often.
REFETCH_INTERVAL: Final = 60 * SECONDS
#: Seconds a JWKS download may take.
FETCH_TIMEOUT: Final = 5 * SECONDS
#: Largest JWKS document read, in bytes.
MAX_JWKS_BYTES: Final = 1 << 20
#: Clock difference tolerated between Cloudflare and this host when checking exp/nbf/iat.
LEEWAY: Final = 10 * SECONDS

#: Gets a URL's body; injectable so tests (and air-gapped setups) need no network.
Fetcher = Callable[[str], Awaitable[bytes]]


def require_pyjwt() -> None:
    """Raise :class:`MissingExtra` unless PyJWT with RS256 support is importable."""
    try:
        from jwt.algorithms import has_crypto
    except ImportError:
        has_crypto = False
    if not has_crypto:
        raise MissingExtra(
            "APP_ACCESS_TEAM", "access", "pyjwt[crypto]", "unset APP_ACCESS_TEAM and APP_ACCESS_AUD"
        )


async def fetch_url(url: str) -> bytes:
    """GET ``url`` with the standard library, off the event loop, within FETCH_TIMEOUT."""
    return await asyncio.to_thread(_get, url)


def _get(url: str) -> bytes:
    # The URL is https://<team>.cloudflareaccess.com/..., built from validated settings.
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
        body: bytes = response.read(MAX_JWKS_BYTES)
        return body


class SigningKeys:
    """The team's public keys by key id, fetched on first use and cached.

    Keys are fetched again after KEYS_TTL, or when a token names a key id not yet known
    (Cloudflare rotates its keys); never more often than once per REFETCH_INTERVAL, so neither
    tokens with made-up key ids nor an unreachable JWKS endpoint turn into a stream of fetches.
    When a fetch fails, the keys already known stay in use.
    """

    def __init__(
        self,
        url: str,
        fetch: Fetcher = fetch_url,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._next_attempt = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, key_id: str) -> Any:
        """The public key with id ``key_id``; :class:`AccessDenied` when there is none."""
        if self._due(key_id):
            async with self._lock:
                if self._due(key_id):  # not fetched meanwhile by a request that held the lock
                    await self._refresh()
        if not self._keys:
            raise KeysUnavailable("no signing keys available")
        try:
            return self._keys[key_id]
        except KeyError:
            raise AccessDenied("token signed with an unknown key id") from None

    def _due(self, key_id: str) -> bool:
        now = self._clock()
        if now < self._next_attempt:
            return False
        stale = self._fetched_at is None or now - self._fetched_at >= KEYS_TTL
        return stale or key_id not in self._keys

    async def _refresh(self) -> None:
        import jwt

        self._next_attempt = self._clock() + REFETCH_INTERVAL
        try:
            document = await self._fetch(self.url)
            keys = {
                key.key_id: key.key
                for key in jwt.PyJWKSet.from_json(document.decode("utf-8")).keys
                if key.key_id is not None
            }
        except (OSError, http.client.HTTPException, ValueError, jwt.PyJWTError) as error:
            logger.error("cannot load Access signing keys from %s: %s", self.url, error)
            return
        self._keys = keys
        self._fetched_at = self._clock()


class TokenVerifier:
    """Checks one Access token: signature, algorithm, issuer, audience and expiry."""

    def __init__(self, *, team_domain: str, audiences: Iterable[str], keys: SigningKeys) -> None:
        self.team_domain = team_domain
        self.audiences = list(audiences)
        self.keys = keys

    async def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims, or :class:`AccessDenied` saying what was wrong with it."""
        import jwt

        if not token:
            raise AccessDenied("no Cf-Access-Jwt-Assertion header")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AccessDenied("token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise AccessDenied(f"token algorithm {header.get('alg')!r} is not RS256")
        key_id = header.get("kid")
        if not isinstance(key_id, str):
            raise AccessDenied("token has no key id")
        key = await self.keys.get(key_id)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=self.audiences,
                issuer=self.team_domain,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AccessDenied("token expired") from None
        except jwt.InvalidAudienceError:
            raise AccessDenied("token audience is not this application") from None
        except jwt.InvalidIssuerError:
            raise AccessDenied("token issuer is not the team domain") from None
        except jwt.InvalidSignatureError:
            raise AccessDenied("token signature does not verify") from None
        except jwt.PyJWTError as error:
            raise AccessDenied(f"token rejected: {error}") from None
        return claims


class AccessGuard:
    """ASGI middleware answering 403 to requests without a valid Access token."""

    def __init__(
        self, app: ASGIApp, verifier: TokenVerifier, *, open_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.verifier = verifier
        self._open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope["headers"]:
            if name == TOKEN_HEADER:
                token = value.decode("latin-1")
                break
        try:
            claims = await self.verifier.verify(token)
        except AccessDenied as denied:
            logger.warning("access denied: %s", denied.reason)
            await send_status(send, 403)
            return
        await self.app({**scope, "app.access_claims": claims}, receive, send)
