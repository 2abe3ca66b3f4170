"""The SDK client: where it goes, how it authenticates, and its errors in one line."""

from __future__ import annotations

import socket
from dataclasses import replace

import cloudflare
import httpx
import pytest

from tests.tunnel.api_server import API_TOKEN, CloudflareApi
from tunnel.cfapi import Api, make_client, map_error
from tunnel.errors import ApiUnavailable, PermissionDenied, ProvisionError, RateLimited
from tunnel.settings import CloudflareSettings


def test_the_client_goes_where_cloudflare_base_url_points(api: CloudflareApi) -> None:
    client = make_client(CloudflareSettings.from_env())

    zones = client.zones.list(name="example.com").result

    assert [zone.name for zone in zones] == ["example.com"]
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/zones")]


def test_the_api_token_goes_only_into_the_authorization_header(
    api: CloudflareApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "global-key-from-env")
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "someone@example.com")

    make_client(CloudflareSettings.from_env()).zones.list(name="example.com")

    (request,) = api.requests
    assert request.headers["authorization"] == f"Bearer {API_TOKEN}"
    assert "x-auth-key" not in request.headers
    assert "x-auth-email" not in request.headers


def test_errors_name_the_action_and_what_was_already_changed(api: CloudflareApi) -> None:
    settings = replace(CloudflareSettings.from_env(), max_retries=0)
    calls = Api(make_client(settings), settings.account_id)
    calls.changed("created tunnel 'x'")
    api.fail("GET", "/zones", status=502, code=1000, message="Bad gateway")

    with pytest.raises(ApiUnavailable) as caught:
        calls.call("look up zone example.com", lambda: calls.client.zones.list().result)

    assert str(caught.value) == (
        "the Cloudflare API failed to look up zone example.com (HTTP 502); try again later or "
        "check www.cloudflarestatus.com (already changed, in order: created tunnel 'x')"
    )


def test_nothing_listening_at_the_base_url_is_one_clear_line(
    api: CloudflareApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as held:  # a loopback port this test holds, with no listener
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{port}/client/v4")
        settings = replace(CloudflareSettings.from_env(), max_retries=0, timeout=2.0)
        calls = Api(make_client(settings), settings.account_id)

        with pytest.raises(ProvisionError, match=r"check the network \(and CLOUDFLARE_BASE_URL"):
            calls.call("look up zone example.com", lambda: calls.client.zones.list().result)


REQUEST = httpx.Request("GET", "https://api.cloudflare.com/client/v4/zones")


def answer(error: type[cloudflare.APIStatusError], status: int) -> cloudflare.APIStatusError:
    return error("refused", response=httpx.Response(status, request=REQUEST), body=None)


@pytest.mark.parametrize(
    ("sdk_error", "expected", "words"),
    [
        (answer(cloudflare.PermissionDeniedError, 403), PermissionDenied, "(HTTP 403): the API"),
        (answer(cloudflare.AuthenticationError, 401), PermissionDenied, "invalid, expired or"),
        (answer(cloudflare.RateLimitError, 429), RateLimited, "wait a few minutes"),
        (answer(cloudflare.NotFoundError, 404), ProvisionError, "rejected the request"),
        # A timeout is a connection error too: it must not read as "could not reach".
        (cloudflare.APITimeoutError(request=REQUEST), ApiUnavailable, "timed out while trying"),
        (cloudflare.APIConnectionError(request=REQUEST), ApiUnavailable, "could not reach"),
    ],
    ids=["403", "401", "429", "404", "timeout", "unreachable"],
)
def test_each_sdk_error_reads_as_what_went_wrong_and_what_to_do(
    sdk_error: cloudflare.CloudflareError, expected: type[ProvisionError], words: str
) -> None:
    error = map_error(sdk_error, "look up zone example.com")

    assert type(error) is expected
    assert words in str(error)
    assert "look up zone example.com" in str(error)
