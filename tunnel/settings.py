"""What provisioning needs from the environment: the one place in ``tunnel/`` reading it.

The API token is checked for shape only (Cloudflare checks the rest) and is never part of a
repr, a log line or an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tunnel.errors import REQUIRED_PERMISSIONS, SettingsError

__all__ = ["CloudflareSettings", "check_account_id", "check_api_token"]

SECONDS = 1.0

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CloudflareSettings:
        """Read CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID; SettingsError when unusable."""
        env = os.environ if environ is None else environ
        return cls(
            api_token=check_api_token(env.get("CLOUDFLARE_API_TOKEN")),
            account_id=check_account_id(env.get("CLOUDFLARE_ACCOUNT_ID")),
        )
