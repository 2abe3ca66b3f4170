"""Reading the host's listeners (``ss -ltn``) for the isolation check."""

from __future__ import annotations

from scripts.isolation import parse_ss

SS_OUTPUT = """\
State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
LISTEN 0      4096       127.0.0.1:8080       0.0.0.0:*
LISTEN 0      4096       127.0.0.1:2377       0.0.0.0:*
LISTEN 0      511                *:2024             *:*
LISTEN 0      4096           [::1]:53            [::]:*
"""


def test_listeners_are_read_with_or_without_the_header_line() -> None:
    expected = {"127.0.0.1:8080", "127.0.0.1:2377", "*:2024", "[::1]:53"}
    assert parse_ss(SS_OUTPUT) == expected
    assert parse_ss(SS_OUTPUT.split("\n", 1)[1]) == expected
    assert parse_ss("") == set()
