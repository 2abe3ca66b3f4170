"""The Cloudflare SDK client this package uses, and the SDK's errors as one-line ProvisionErrors.

Every call goes through :meth:`Api.call`, which names what it was doing and, when it fails,
raises the project's error listing what the run had already changed (``Api.done``), so a
failure mid-way says exactly what is in the account now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import cloudflare
import httpx
from cloudflare import Cloudflare

from tunnel.errors import (
    REQUIRED_PERMISSIONS,
    ApiUnavailable,
    PermissionDenied,
    ProvisionError,
    RateLimited,
)
from tunnel.settings import CloudflareSettings

__all__ = ["Api", "as_dict", "error_codes", "make_client", "map_error"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


def make_client(
    settings: CloudflareSettings, *, http_client: httpx.Client | None = None
) -> Cloudflare:
    """A Cloudflare SDK client that authenticates with ``settings.api_token`` only.

    The base URL is ``settings.base_url``: CLOUDFLARE_BASE_URL when it is set, as the SDK
    itself would read it, else the public API.
    """
    client = Cloudflare(
        api_token=settings.api_token,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        http_client=http_client,
    )
    # The SDK also reads CLOUDFLARE_API_KEY / CLOUDFLARE_EMAIL from the environment and would
    # prefer them to the token; provisioning must use exactly the token it was given.
    client.api_key = None
    client.api_email = None
    client.user_service_key = None
    return client


def error_codes(exc: cloudflare.APIStatusError) -> set[int]:
    """The Cloudflare error codes in an error answer's ``errors`` list."""
    body = exc.body
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), int)}


def _api_messages(exc: cloudflare.APIStatusError) -> str:
    body = exc.body
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        texts = [
            f"{e.get('message', '')} (code {e.get('code')})" for e in errors if isinstance(e, dict)
        ]
        if texts:
            return "; ".join(texts)
    return exc.response.reason_phrase


#: The SDK errors whose message is the same whatever the answer said: the project's error for
#: each and its message, with ``{action}`` (what the run was doing) and ``{permissions}`` (what
#: the token needs). The first that matches wins, so a subclass stands before its base: every
#: HTTP error here is an APIStatusError, and a timeout is an APIConnectionError too.
_FIXED_MESSAGES: tuple[tuple[type[cloudflare.CloudflareError], type[ProvisionError], str], ...] = (
    (
        cloudflare.PermissionDeniedError,
        PermissionDenied,
        "Cloudflare refused to {action} (HTTP 403): the API token needs the permissions "
        "{permissions}; add them to the token and run again",
    ),
    (
        cloudflare.AuthenticationError,
        PermissionDenied,
        "Cloudflare did not accept the API token while trying to {action} (HTTP 401): "
        "it is invalid, expired or revoked; create one with {permissions}",
    ),
    (
        cloudflare.RateLimitError,
        RateLimited,
        "Cloudflare rate-limited the API token while trying to {action} (HTTP 429); "
        "wait a few minutes and run again",
    ),
    (
        cloudflare.APITimeoutError,
        ApiUnavailable,
        "the Cloudflare API timed out while trying to {action}; run again later",
    ),
    (
        cloudflare.APIConnectionError,
        ApiUnavailable,
        "could not reach the Cloudflare API to {action}: check the network (and "
        "CLOUDFLARE_BASE_URL, if set) and run again",
    ),
)


def map_error(exc: cloudflare.CloudflareError, action: str) -> ProvisionError:
    """One-line, actionable error for an SDK exception."""
    for sdk_error, error, message in _FIXED_MESSAGES:
        if isinstance(exc, sdk_error):
            permissions = ", ".join(REQUIRED_PERMISSIONS)
            return error(message.format(action=action, permissions=permissions))
    if isinstance(exc, cloudflare.APIStatusError):
        if exc.status_code >= 500:
            return ApiUnavailable(
                f"the Cloudflare API failed to {action} (HTTP {exc.status_code}); "
                "try again later or check www.cloudflarestatus.com"
            )
        return ProvisionError(
            f"Cloudflare rejected the request to {action} (HTTP {exc.status_code}): "
            f"{_api_messages(exc)}"
        )
    return ProvisionError(f"could not {action}: {exc.__class__.__name__}")


class Api:
    """The SDK client, the account it works in, and what this run has changed so far."""

    def __init__(self, client: Cloudflare, account_id: str) -> None:
        self.client = client
        self.account_id = account_id
        self.done: list[str] = []

    @contextmanager
    def calling(self, action: str) -> Iterator[None]:
        """Turn SDK errors raised inside into ProvisionErrors listing ``done``."""
        try:
            yield
        except cloudflare.CloudflareError as exc:
            raise map_error(exc, action).with_done(self.done) from None

    def call(self, action: str, fn: Callable[[], _T]) -> _T:
        """``fn()`` with its SDK errors mapped; ``action`` reads as "could not <action>"."""
        with self.calling(action):
            return fn()

    def changed(self, what: str) -> None:
        """Record one change made in the account (for the report and for error messages)."""
        logger.info("%s", what)
        self.done.append(what)


def as_dict(model: object) -> dict[str, Any]:
    """An SDK model (or a plain mapping) as a dict with the API's own key names."""
    if model is None:
        return {}
    to_dict = getattr(model, "to_dict", None)
    if to_dict is None:
        return dict(cast("dict[str, Any]", model))
    return cast("dict[str, Any]", to_dict())
