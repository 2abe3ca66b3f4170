"""The local Cloudflare API, reached the way a user reaches the real one: from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.tunnel.api_server import ACCOUNT_ID, API_TOKEN, CloudflareApi, serve


@contextmanager
def local_cloudflare(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareApi]:
    """An empty account with a Free zone ``example.com``, served on 127.0.0.1.

    The environment is what a user exports: token, account id and the SDK's base URL, with
    nothing else the SDK would read instead (a global API key and e-mail, or a proxy), so the
    code under test reads it through ``CloudflareSettings.from_env`` as it would in use.
    """
    state = CloudflareApi()
    with serve(state) as base_url:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", base_url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
        monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        for name in ("CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        yield state
