"""Client addresses: forwarding headers count only from the configured number of proxies."""

from __future__ import annotations

import pytest

from app.config import ClientIPHeader
from app.proxy import ClientIP, forwarded_client
from app.typing import Receive, Scope, Send
from tests.app.support import access_lines, call, http_scope, make_service


def headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


@pytest.mark.parametrize(
    ("pairs", "hops", "header", "expected"),
    [
        ([("x-forwarded-for", "203.0.113.9")], 1, "x-forwarded-for", "203.0.113.9"),
        # the client's own claim sits left of what the trusted proxy appended
        ([("x-forwarded-for", "6.6.6.6, 203.0.113.9")], 1, "x-forwarded-for", "203.0.113.9"),
        (
            [("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")],
            2,
            "x-forwarded-for",
            "203.0.113.9",
        ),
        # repeated headers read as one list, in order
        (
            [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.9")],
            1,
            "x-forwarded-for",
            "203.0.113.9",
        ),
        # fewer entries than trusted hops: nobody trustworthy wrote one
        ([("x-forwarded-for", "203.0.113.9")], 2, "x-forwarded-for", None),
        ([("x-forwarded-for", "not-an-ip")], 1, "x-forwarded-for", None),
        ([("x-forwarded-for", "2001:DB8::1")], 1, "x-forwarded-for", "2001:db8::1"),
        ([], 1, "x-forwarded-for", None),
        ([("cf-connecting-ip", "203.0.113.9")], 1, "cf-connecting-ip", "203.0.113.9"),
        ([("cf-connecting-ip", "1.1.1.1, 2.2.2.2")], 1, "cf-connecting-ip", None),
        ([("cf-connecting-ip", "203.0.113.9")], 1, "x-forwarded-for", None),
        ([("x-forwarded-for", "203.0.113.9")], 0, "x-forwarded-for", None),
    ],
)
def test_forwarded_client(
    pairs: list[tuple[str, str]], hops: int, header: ClientIPHeader, expected: str | None
) -> None:
    assert forwarded_client(headers(*pairs), hops=hops, header=header) == expected


async def echo_client(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["client"][0].encode()})


async def test_the_middleware_replaces_the_client_only_when_a_proxy_vouches() -> None:
    app = ClientIP(echo_client, hops=1, header="x-forwarded-for")

    vouched = await call(app, http_scope(headers=headers(("x-forwarded-for", "203.0.113.9"))))
    unvouched = await call(app, http_scope(headers=headers(("x-forwarded-for", "junk"))))

    assert vouched.body == b"203.0.113.9"
    assert unvouched.body == b"198.51.100.7"  # the TCP peer


async def test_by_default_forwarding_headers_are_ignored() -> None:
    service, log = make_service()
    spoofed = headers(
        ("host", "example.com"), ("x-forwarded-for", "6.6.6.6"), ("cf-connecting-ip", "6.6.6.6")
    )

    await call(service.stack, http_scope(headers=spoofed))

    assert access_lines(log)[-1]["client_ip"] == "198.51.100.7"  # the TCP peer


async def test_with_one_hop_the_access_log_names_the_forwarded_client() -> None:
    service, log = make_service(proxy_hops=1, client_ip_header="cf-connecting-ip")
    forwarded = headers(("host", "example.com"), ("cf-connecting-ip", "203.0.113.9"))

    await call(service.stack, http_scope(headers=forwarded))

    assert access_lines(log)[-1]["client_ip"] == "203.0.113.9"
