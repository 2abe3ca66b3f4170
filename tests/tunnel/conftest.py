"""The local Cloudflare API, served on 127.0.0.1 for each test that asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tunnel.api_server import ACCOUNT_ID, API_TOKEN, CloudflareApi, serve
from tunnel.spec import TunnelSpec, load_spec

SPEC_FILE = Path(__file__).resolve().parents[2] / "tunnel.yaml"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareApi]:
    """A Free zone ``example.com`` in an empty account, reached through CLOUDFLARE_BASE_URL.

    The environment is what a user exports: token, account id and the SDK's base URL; the
    code under test reads it through ``CloudflareSettings.from_env``.
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


@pytest.fixture
def spec() -> TunnelSpec:
    """The shipped tunnel.yaml."""
    return load_spec(SPEC_FILE)
