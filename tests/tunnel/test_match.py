"""Which rule a URL hits, with cloudflared's semantics."""

from __future__ import annotations

import pytest

from tunnel.errors import BadURL
from tunnel.match import match_url
from tunnel.model import parse_config

CONFIG = parse_config(
    {
        "ingress": [
            {"hostname": "app.example.com", "service": "http://app:8080"},
            {"hostname": "*.example.com", "path": "/api/", "service": "http://api:8080"},
            {"hostname": "*.example.com", "service": "http://web:8080"},
            {"path": "\\.png$", "service": "http://img:8080"},
            {"hostname": "Shop.Example.org", "service": "http://shop:8080"},
            {"service": "http_status:404"},
        ]
    }
)


@pytest.mark.parametrize(
    ("url", "index"),
    [
        ("https://app.example.com/", 0),
        ("https://app.example.com:8443/", 0),  # the port is ignored
        ("https://app.example.com/api/", 0),  # first match wins
        ("https://a.example.com/v1/api/users", 1),  # the path regex is unanchored
        ("https://a.b.example.com/api/", 1),  # the wildcard spans several labels
        ("https://a.example.com/", 2),
        ("https://example.com/", 5),  # *.example.com does not match the apex
        ("https://example.com/logo.png", 3),
        ("https://other.org/a%2Epng", 3),  # the decoded path is matched
        ("https://shop.example.org/", 4),  # a rule's hostname also matches in IDNA (lower) form
        ("https://APP.EXAMPLE.COM/", 5),  # request hosts compare case-sensitively
        ("https://[::1]:80/", 5),
    ],
)
def test_matches_like_cloudflared(url: str, index: int) -> None:
    assert match_url(CONFIG, url) == index


def test_punycode_hostname_rule_matches_the_ascii_form() -> None:
    config = parse_config(
        {
            "ingress": [
                {"hostname": "b\u00fccher.example.com", "service": "http://a:1"},
                {"service": "x://y"},
            ]
        }
    )
    assert match_url(config, "https://xn--bcher-kva.example.com/") == 0
    assert match_url(config, "https://b\u00fccher.example.com/") == 0


def test_url_without_scheme_has_no_hostname() -> None:
    with pytest.raises(BadURL, match="add a scheme"):
        match_url(CONFIG, "/just/a/path")


def test_url_go_cannot_parse() -> None:
    with pytest.raises(BadURL, match="not a URL cloudflared can match"):
        match_url(CONFIG, "https://app.example.com/%zz")
