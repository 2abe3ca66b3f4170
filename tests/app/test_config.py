"""Settings from APP_* variables: defaults, parsing, and one clear line for each bad value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import DEFAULT_CSP, KIB, MIB, Settings
from app.errors import ConfigError

AUD = "a" * 64


def test_defaults_suit_a_container_behind_a_tunnel() -> None:
    settings = Settings.from_env({})

    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8080, 1)  # noqa: S104
    assert settings.keep_alive_timeout > 90  # cloudflared keeps idle connections for 90 s
    assert settings.grace_period == 10
    assert settings.max_body_bytes == 1 * MIB
    assert settings.max_header_bytes == 16 * KIB
    assert settings.max_url_bytes == 8 * KIB
    assert settings.proxy_hops == 0  # forwarding headers are not trusted by default
    assert settings.allowed_hosts == ()
    assert settings.metrics_port is None
    assert settings.access_required is False
    assert settings.content_security_policy == DEFAULT_CSP
    assert settings.access_log is True


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": "9000",
            "APP_LOOP": "asyncio",
            "APP_KEEP_ALIVE_TIMEOUT": "100.5",
            "APP_GRACE_PERIOD": "3",
            "APP_SHUTDOWN_DELAY": "1",
            "APP_MAX_BODY_BYTES": "10",
            "APP_MAX_HEADER_BYTES": "2048",
            "APP_MAX_URL_BYTES": "1500",
            "APP_ALLOWED_HOSTS": " Example.com, .example.org ,*.example.net",
            "APP_PROXY_HOPS": "1",
            "APP_CLIENT_IP_HEADER": "CF-Connecting-IP",
            "APP_HSTS_PRELOAD": "yes",
            "APP_CSP": "default-src 'self'",
            "APP_LOG_LEVEL": "WARNING",
            "APP_ACCESS_LOG": "off",
            "APP_METRICS_PORT": "9100",
            "APP_METRICS_HOST": "127.0.0.1",
            "APP_ACCESS_TEAM": "myteam",
            "APP_ACCESS_AUD": AUD.upper(),
        }
    )

    assert settings == Settings(
        host="127.0.0.1",
        port=9000,
        loop="asyncio",
        keep_alive_timeout=100.5,
        grace_period=3.0,
        shutdown_delay=1.0,
        max_body_bytes=10,
        max_header_bytes=2048,
        max_url_bytes=1500,
        allowed_hosts=("example.com", ".example.org", "*.example.net"),
        proxy_hops=1,
        client_ip_header="cf-connecting-ip",
        hsts_preload=True,
        content_security_policy="default-src 'self'",
        log_level="warning",
        access_log=False,
        metrics_port=9100,
        metrics_host="127.0.0.1",
        access_team_domain="https://myteam.cloudflareaccess.com",
        access_audiences=(AUD,),
    )


def test_workers_are_read() -> None:
    assert Settings.from_env({"APP_WORKERS": "4"}).workers == 4


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("APP_PORT", "abc", "APP_PORT must be an integer 1-65535, got 'abc'"),
        ("APP_PORT", "0", "APP_PORT must be an integer 1-65535, got '0'"),
        ("APP_PORT", "70000", "APP_PORT must be an integer 1-65535, got '70000'"),
        ("APP_WORKERS", "0", "APP_WORKERS must be an integer 1-64, got '0'"),
        ("APP_HOST", "exa mple", "APP_HOST must be an IP address or a hostname, got 'exa mple'"),
        ("APP_LOOP", "trio", "APP_LOOP must be one of auto, asyncio, uvloop, got 'trio'"),
        (
            "APP_KEEP_ALIVE_TIMEOUT",
            "soon",
            "APP_KEEP_ALIVE_TIMEOUT must be a number of seconds 1-3600, got 'soon'",
        ),
        ("APP_GRACE_PERIOD", "-1", "APP_GRACE_PERIOD must be a number of seconds 0-600, got '-1'"),
        (
            "APP_MAX_BODY_BYTES",
            "1MB",
            "APP_MAX_BODY_BYTES must be an integer 0-1099511627776, got '1MB'",
        ),
        (
            "APP_MAX_HEADER_BYTES",
            "100",
            "APP_MAX_HEADER_BYTES must be an integer 1024-1048576, got '100'",
        ),
        (
            "APP_MAX_URL_BYTES",
            "8k",
            "APP_MAX_URL_BYTES must be an integer 1024-1048576, got '8k'",
        ),
        ("APP_MAX_URL_BYTES", "100", None),
        ("APP_PROXY_HOPS", "many", "APP_PROXY_HOPS must be an integer 0-16, got 'many'"),
        (
            "APP_CLIENT_IP_HEADER",
            "forwarded",
            "APP_CLIENT_IP_HEADER must be one of x-forwarded-for, cf-connecting-ip, "
            "got 'forwarded'",
        ),
        (
            "APP_HSTS_PRELOAD",
            "maybe",
            "APP_HSTS_PRELOAD must be true or false (1/0, yes/no, on/off), got 'maybe'",
        ),
        ("APP_CSP", "default-src 'none'\r\nX-Evil: 1", None),
        (
            "APP_LOG_LEVEL",
            "verbose",
            "APP_LOG_LEVEL must be one of debug, info, warning, error, got 'verbose'",
        ),
        ("APP_METRICS_PORT", "x", "APP_METRICS_PORT must be an integer 1-65535 or empty, got 'x'"),
        (
            "APP_METRICS_PORT",
            "8080",
            "APP_METRICS_PORT must be a port other than APP_PORT, got '8080'",
        ),
        ("APP_ALLOWED_HOSTS", "example.com,exa_mple.com", None),
        ("APP_ALLOWED_HOSTS", "a.com:8080", None),
        ("APP_ACCESS_TEAM", "my team", None),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_allowed(
    name: str, value: str, message: str | None
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})

    assert caught.value.name == name
    assert caught.value.value == value.strip()
    text = str(caught.value)
    if message is not None:
        assert text == message
    assert text.startswith(f"{name} must be ")
    assert "\n" in value or "\n" not in text  # one line, whatever the value


def test_access_variables_come_in_pairs() -> None:
    with pytest.raises(ConfigError, match=r"^APP_ACCESS_AUD must be set together"):
        Settings.from_env({"APP_ACCESS_TEAM": "myteam"})
    with pytest.raises(ConfigError, match=r"^APP_ACCESS_TEAM must be set together"):
        Settings.from_env({"APP_ACCESS_AUD": AUD})


def test_an_aud_tag_must_look_like_one() -> None:
    with pytest.raises(ConfigError, match="64 hex characters"):
        Settings.from_env({"APP_ACCESS_TEAM": "myteam", "APP_ACCESS_AUD": "not-a-tag"})


@pytest.mark.parametrize(
    "team",
    ["myteam", "MyTeam", "myteam.cloudflareaccess.com", "https://myteam.cloudflareaccess.com/"],
)
def test_the_team_is_accepted_as_a_name_or_a_domain(team: str) -> None:
    settings = Settings.from_env({"APP_ACCESS_TEAM": team, "APP_ACCESS_AUD": f"{AUD},{'b' * 64}"})

    assert settings.access_team_domain == "https://myteam.cloudflareaccess.com"
    assert settings.access_audiences == (AUD, "b" * 64)
    assert settings.access_required


def test_metrics_are_refused_with_several_workers() -> None:
    with pytest.raises(ConfigError, match=r"^APP_METRICS_PORT must be empty when APP_WORKERS > 1"):
        Settings.from_env({"APP_METRICS_PORT": "9100", "APP_WORKERS": "2"})


def test_empty_values_count_as_unset() -> None:
    assert Settings.from_env(
        {"APP_PORT": "", "APP_METRICS_PORT": " ", "APP_ALLOWED_HOSTS": ""}
    ) == (Settings())


def test_ip_hosts_are_allowed_hosts_and_bind_addresses() -> None:
    settings = Settings.from_env({"APP_HOST": "::", "APP_ALLOWED_HOSTS": "127.0.0.1,[::1]"})

    assert settings.host == "::"
    assert settings.allowed_hosts == ("127.0.0.1", "[::1]")


@given(st.integers(min_value=1, max_value=65535))
def test_any_port_in_range_is_read_as_that_port(port: int) -> None:
    assert Settings.from_env({"APP_PORT": f" {port} "}).port == port


@given(st.integers().filter(lambda n: not 1 <= n <= 65535))
def test_any_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigError, match=r"^APP_PORT must be an integer 1-65535"):
        Settings.from_env({"APP_PORT": str(port)})
