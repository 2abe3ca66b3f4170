"""What provisioning needs from the environment: the one place in ``tunnel/`` reading it.

The API token is checked for shape only (Cloudflare checks the rest) and is never part of a
repr, a log line or an error message. ``CLOUDFLARE_BASE_URL`` is the Cloudflare SDK's own
variable for the API's address (an API gateway in front of it, or a local test server); it is
read here, like the rest, and handed to the SDK.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tunnel.errors import REQUIRED_PERMISSIONS, SettingsError

__all__ = [
    "DEFAULT_API_BASE",
    "CloudflareSettings",
    "check_account_id",
    "check_api_token",
    "check_base_url",
]

SECONDS = 1.0
#: Where the SDK sends requests unless CLOUDFLARE_BASE_URL says otherwise.
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"

# User/account API tokens: 40 URL-safe characters, or the scannable cfut_/cfat_ form.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{40}|cf(?:ut|at)_[A-Za-z0-9_-]{40,}")
_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
_CREATE_TOKEN = "create an API token at dash.cloudflare.com/profile/api-tokens with " + ", ".join(
    REQUIRED_PERMISSIONS
)


def check_api_token(token: str | None) -> str:
    """The token when it looks like a Cloudflare API token; SettingsError (without it) if not."""
    if not token:
        raise SettingsError(
            "CLOUDFLARE_API_TOKEN", "is not set", f"{_CREATE_TOKEN}, then export it"
        )
    if token != token.strip():
        raise SettingsError(
            "CLOUDFLARE_API_TOKEN",
            "has surrounding whitespace",
            "export it without spaces or newline",
        )
    if token.startswith("cfk_"):
        raise SettingsError(
            "CLOUDFLARE_API_TOKEN", "holds a Global API Key, not an API token", _CREATE_TOKEN
        )
    if not _TOKEN.fullmatch(token):
        raise SettingsError(
            "CLOUDFLARE_API_TOKEN",
            f"is malformed ({len(token)} characters; expected 40 letters, digits, '-' or '_', "
            "or a cfut_/cfat_ token)",
            "copy the whole token value again",
        )
    return token


def check_account_id(account_id: str | None) -> str:
    """The account ID when it is 32 lower-case hex digits; SettingsError if not."""
    if not account_id:
        raise SettingsError(
            "CLOUDFLARE_ACCOUNT_ID",
            "is not set",
            "copy the Account ID from the dashboard's account home and export it",
        )
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise SettingsError(
            "CLOUDFLARE_ACCOUNT_ID",
            f"is malformed ({account_id!r}; expected 32 hex digits)",
            "copy the Account ID from the dashboard's account home",
        )
    return account_id


def check_base_url(url: str | None) -> str:
    """The API base URL: https anywhere, plain http only to this machine (the token travels)."""
    if not url:
        return DEFAULT_API_BASE
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            "CLOUDFLARE_BASE_URL",
            f"is not an http(s) URL ({url!r})",
            f"set it to the API's address, e.g. {DEFAULT_API_BASE}, or unset it",
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(
            "CLOUDFLARE_BASE_URL",
            f"sends the API token in clear text to {parts.hostname} ({url!r})",
            "use an https:// address (plain http is accepted for a loopback address only)",
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class CloudflareSettings:
    """Credentials and client limits for the Cloudflare API."""

    #: Cloudflare API token; never shown in repr or logs.
    api_token: str = field(repr=False)
    #: Account that owns the tunnel and the zone.
    account_id: str
    #: Seconds one API request may take.
    timeout: float = 30 * SECONDS
    #: Retries the SDK makes on 429 and 5xx before giving up.
    max_retries: int = 2
    #: The API's address (CLOUDFLARE_BASE_URL, the SDK's own variable).
    base_url: str = DEFAULT_API_BASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CloudflareSettings:
        """Read CLOUDFLARE_API_TOKEN, _ACCOUNT_ID and _BASE_URL; SettingsError when unusable."""
        env = os.environ if environ is None else environ
        return cls(
            api_token=check_api_token(env.get("CLOUDFLARE_API_TOKEN")),
            account_id=check_account_id(env.get("CLOUDFLARE_ACCOUNT_ID")),
            base_url=check_base_url(env.get("CLOUDFLARE_BASE_URL")),
        )
