"""Credentials from the environment: checked for shape, never shown."""

from __future__ import annotations

import re

import pytest

from tunnel.errors import SettingsError
from tunnel.settings import CloudflareSettings

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "Zq" * 20


def test_reads_token_and_account() -> None:
    settings = CloudflareSettings.from_env(
        {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
    )
    assert settings.api_token == TOKEN
    assert settings.account_id == ACCOUNT
    assert TOKEN not in repr(settings)


def test_scannable_token_format_is_accepted() -> None:
    token = "cfut_" + "a" * 40 + "12345678"
    settings = CloudflareSettings.from_env(
        {"CLOUDFLARE_API_TOKEN": token, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
    )
    assert settings.api_token == token


def test_missing_token_says_which_permissions_to_grant() -> None:
    with pytest.raises(SettingsError) as caught:
        CloudflareSettings.from_env({"CLOUDFLARE_ACCOUNT_ID": ACCOUNT})
    message = str(caught.value)
    assert message.startswith("CLOUDFLARE_API_TOKEN is not set")
    assert (
        "Account · Cloudflare Tunnel · Edit, Zone · DNS · Edit, Zone · Zone WAF · Edit" in message
    )


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("short", "is malformed (5 characters"),
        (TOKEN + "\n", "has surrounding whitespace"),
        ("cfk_" + "a" * 44, "holds a Global API Key"),
        ("a" * 39 + "!", "is malformed (40 characters"),
    ],
)
def test_malformed_token_is_described_without_echoing_it(token: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        CloudflareSettings.from_env(
            {"CLOUDFLARE_API_TOKEN": token, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
        )
    assert problem in str(caught.value)
    assert token.strip() not in str(caught.value)


@pytest.mark.parametrize("account", ["", "ABC", "0123456789ABCDEF0123456789ABCDEF"])
def test_account_id_must_be_32_hex_digits(account: str) -> None:
    with pytest.raises(SettingsError, match="CLOUDFLARE_ACCOUNT_ID"):
        CloudflareSettings.from_env(
            {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": account}
        )


def test_the_sdks_base_url_variable_is_honoured_and_defaults_to_the_public_api() -> None:
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
    assert CloudflareSettings.from_env(env).base_url == "https://api.cloudflare.com/client/v4"
    gateway = {**env, "CLOUDFLARE_BASE_URL": "https://gateway.example.net/cf/client/v4/"}
    assert CloudflareSettings.from_env(gateway).base_url == (
        "https://gateway.example.net/cf/client/v4"
    )
    local = {**env, "CLOUDFLARE_BASE_URL": "http://127.0.0.1:8999/client/v4"}
    assert CloudflareSettings.from_env(local).base_url == "http://127.0.0.1:8999/client/v4"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://gateway.example.net/client/v4", "sends the API token in clear text"),
        ("ftp://api.example.net/", "is not an http(s) URL"),
        ("api.cloudflare.com/client/v4", "is not an http(s) URL"),
    ],
)
def test_a_base_url_that_would_leak_the_token_or_go_nowhere_is_refused(
    url: str, problem: str
) -> None:
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
    with pytest.raises(SettingsError, match=f"^CLOUDFLARE_BASE_URL {re.escape(problem)}"):
        CloudflareSettings.from_env({**env, "CLOUDFLARE_BASE_URL": url})
