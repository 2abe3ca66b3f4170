"""The churn flood: its client against stand-in servers, and its verdicts on what the service
held before and after (a service that keeps clients who left fails them)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from scripts.core.checks import Check
from scripts.security import churn as flood
from scripts.security.churn import Churn
from scripts.security.probe import Holdings
from tests.scripts.security.test_attacks import OK, REFUSED, _read_head, answer_and_close, server

MIB = 1 << 20


def answer_until_hung_up(response: bytes) -> Callable[[socket.socket], None]:
    """Keep-alive: answer each request on the connection until the client closes it."""

    def handle(conn: socket.socket) -> None:
        while _read_head(conn):
            conn.sendall(response)

    return handle


def test_churn_clients_are_answered_and_the_count_is_bounded() -> None:
    with server(answer_until_hung_up(OK)) as port:
        churn = flood.churn("127.0.0.1", port, "h", clients=120, workers=4)

    assert (churn.clients, churn.answered, churn.failures) == (120, 120, {})


def test_churn_counts_what_went_wrong() -> None:
    with server(answer_and_close(REFUSED)) as port:
        refused = flood.churn("127.0.0.1", port, "h", clients=10, workers=2)
    with server(lambda conn: None) as port:
        dropped = flood.churn("127.0.0.1", port, "h", clients=10, workers=2)

    assert (refused.answered, refused.failures) == (0, {"400": 10})
    assert (dropped.answered, dropped.failures) == (0, {"reset": 10})


def test_churn_stops_at_its_time_limit() -> None:
    def slow(conn: socket.socket) -> None:
        _read_head(conn)
        time.sleep(0.2)
        conn.sendall(OK)

    with server(slow) as port:
        churn = flood.churn("127.0.0.1", port, "h", clients=1000, workers=2, time_limit=0.5)

    assert churn.clients < 20
    assert churn.answered == churn.clients


def holdings(*, fds: int = 7, rss_mib: float = 43.0, close_wait: int = 0) -> Holdings:
    return Holdings(processes=1, fds=fds, rss=int(rss_mib * MIB), close_wait=close_wait)


def churned(answered: int = 5000, **failures: int) -> Churn:
    return Churn(clients=5000, answered=answered, seconds=3.3, failures=failures)


def verdicts(checks: list[Check]) -> dict[str, bool]:
    return {check.id: check.ok for check in checks}


def test_a_service_that_lets_every_client_go_passes_the_churn_case() -> None:
    checks = flood.judge(churned(), holdings(), holdings(fds=8, rss_mib=44.1))

    assert verdicts(checks) == {
        "ATK-CHURN": True,
        "ATK-CHURN-RELEASED": True,
        "ATK-CHURN-MEMORY": True,
    }
    assert "5000 of 5000 answered 200" in checks[0].evidence
    assert "+1.1 MiB" in checks[2].evidence


def test_sockets_left_in_close_wait_fail_the_churn_case() -> None:
    # What Hypercorn without app/connections.py leaves: every client's socket, and its memory.
    after = holdings(fds=5007, rss_mib=105.0, close_wait=5000)

    checks = flood.judge(churned(), holdings(), after)

    assert verdicts(checks) == {
        "ATK-CHURN": True,
        "ATK-CHURN-RELEASED": False,
        "ATK-CHURN-MEMORY": False,
    }
    assert "CLOSE-WAIT 5000" in checks[1].evidence


def test_descriptors_kept_without_close_wait_fail_too() -> None:
    checks = flood.judge(churned(), holdings(), holdings(fds=7 + 50))

    assert not verdicts(checks)["ATK-CHURN-RELEASED"]


def test_clients_not_answered_fail_the_churn_case_and_are_named() -> None:
    checks = flood.judge(churned(4990, reset=10), holdings(), holdings())

    assert not checks[0].ok
    assert "reset: 10" in checks[0].evidence
