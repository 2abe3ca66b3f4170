"""Go's URL parsing, where it differs from urllib."""

from __future__ import annotations

import pytest

from tunnel.gourl import URLError, parse_url, split_host_port


@pytest.mark.parametrize(
    ("raw", "scheme", "hostname", "path"),
    [
        ("http://app:8080", "http", "app", ""),
        ("http://app:8080/", "http", "app", "/"),
        ("HTTP://App:80/x%20y", "http", "App", "/x y"),
        ("localhost:8080", "localhost", "", ""),  # a scheme and an opaque part, no host
        ("tcp://db:5432", "tcp", "db", ""),
        ("http://[::1]:80", "http", "::1", ""),
        ("http://user@app", "http", "app", ""),
        ("https://a.b.example.com:8443/api?q=1#top", "https", "a.b.example.com", "/api"),
    ],
)
def test_parses_like_go(raw: str, scheme: str, hostname: str, path: str) -> None:
    url = parse_url(raw)
    assert (url.scheme, url.hostname, url.path) == (scheme, hostname, path)


@pytest.mark.parametrize(
    "raw",
    [
        "http://app:abc",
        "http://a b",
        "http://app%zz",
        "://app",
        "http://a:1:2",
        "http://[127.0.0.1]:80",
        "http://app\n",
        "1http:x:y",
    ],
)
def test_rejects_what_go_rejects(raw: str) -> None:
    with pytest.raises(URLError):
        parse_url(raw)


@pytest.mark.parametrize(
    ("hostport", "host"),
    [("example.com:8080", "example.com"), ("example.com:", "example.com"), ("[::1]:80", "::1")],
)
def test_split_host_port(hostport: str, host: str) -> None:
    assert split_host_port(hostport)[0] == host


@pytest.mark.parametrize("hostport", ["example.com", "", "::1", "[::1]", "a:b:c"])
def test_split_host_port_needs_exactly_one_port(hostport: str) -> None:
    with pytest.raises(ValueError, match="address"):
        split_host_port(hostport)
