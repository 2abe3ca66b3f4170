"""The local Cloudflare API, served on 127.0.0.1 for each test that asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tunnel.api_server import CloudflareApi
from tests.tunnel.local_api import local_cloudflare
from tunnel.spec import TunnelSpec, load_spec

SPEC_FILE = Path(__file__).resolve().parents[2] / "tunnel.yaml"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareApi]:
    """A Free zone ``example.com`` in an empty account, reached through CLOUDFLARE_BASE_URL."""
    with local_cloudflare(monkeypatch) as state:
        yield state


@pytest.fixture
def spec() -> TunnelSpec:
    """The shipped tunnel.yaml."""
    return load_spec(SPEC_FILE)
