"""The attack simulation's judgement and its raw client, against stand-in servers on 127.0.0.1.

The stand-ins are tiny socket servers in threads: one that answers well, one that answers a
smuggled request, one that never answers, one that serves a single connection at a time (which
slowloris must catch), one that drops every connection (which the burst must catch).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from scripts.security import attacks
from scripts.security.attacks import WireAnswer, answer_statuses, evaluate, leaks, send_raw
from scripts.security.cases import Case, cases

OK = b"HTTP/1.1 200 \r\ncontent-length: 2\r\n\r\nok"
REFUSED = b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
NOT_ALLOWED = b"HTTP/1.1 405 \r\ncontent-length: 3\r\nallow: GET\r\n\r\nno!"
NOT_FOUND = b"HTTP/1.1 404 \r\ncontent-length: 9\r\n\r\nnot found"


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def server(handle: Callable[[socket.socket], None], *, threaded: bool = True) -> Iterator[int]:
    """A server on 127.0.0.1 running ``handle`` per connection; its port. Stopped on exit."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                handle(conn)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            if threaded:
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()
            else:
                serve_one(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=15)
        listener.close()


def answer_and_close(response: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(response)

    return handle


# ---- reading answers -------------------------------------------------------------------------


def test_statuses_of_complete_and_partial_answers() -> None:
    assert answer_statuses(REFUSED) == ((400,), True)
    assert answer_statuses(NOT_ALLOWED + NOT_FOUND) == ((405, 404), True)
    assert answer_statuses(NOT_FOUND[:-3]) == ((404,), False)
    assert answer_statuses(b"HTTP/1.1 200 \r\ncontent-le") == ((), False)
    chunked = b"HTTP/1.1 200 \r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    assert answer_statuses(chunked) == ((200,), True)
    assert answer_statuses(b"") == ((), True)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"HTTP/1.1 500 \r\n\r\nTraceback (most recent call last):\n", ["traceback"]),
        (b'HTTP/1.1 500 \r\n\r\n  File "/opt/app/app/routes.py", line 12, in x', ["stack frame"]),
        (b"HTTP/1.1 400 \r\nserver: hypercorn-h11\r\n\r\n", ["server header"]),
        (b"HTTP/1.1 400 \r\n\r\nPython/3.13 Hypercorn 0.18", ["product/version"]),
        (b"HTTP/1.1 200 \r\nx-powered-by: Quart\r\n\r\n", ["x-powered-by header"]),
        (REFUSED + OK, []),
    ],
)
def test_leaks_are_recognised(data: bytes, found: list[str]) -> None:
    assert leaks(data) == found


# ---- judging a case --------------------------------------------------------------------------

CASE = Case(id="X", title="x", payload=b"", expect=frozenset({400, 404}))


def test_an_expected_status_passes_and_another_fails() -> None:
    assert evaluate(CASE, WireAnswer(statuses=(404,), data=NOT_FOUND, closed=True)).ok
    check = evaluate(CASE, WireAnswer(statuses=(200,), data=OK))
    assert not check.ok
    assert "status 200 not in [400, 404]" in check.evidence
    assert check.id == "ATK-X"


def test_a_closed_connection_passes_only_where_the_case_allows_it() -> None:
    closed = WireAnswer(closed=True)
    check = evaluate(CASE, closed)
    assert not check.ok
    assert "no answer" in check.evidence
    assert "(expected 400 or 404)" in check.evidence
    lenient = Case(id="L", title="l", payload=b"", expect=frozenset({413}), closed_ok=True)
    assert evaluate(lenient, closed).ok
    assert not evaluate(lenient, WireAnswer(statuses=(200,), data=OK, closed=True)).ok
    assert not evaluate(CASE, WireAnswer(timed_out=True)).ok


def hang_up_after(count: int) -> Callable[[socket.socket], None]:
    """A server that reads ``count`` bytes of anything and closes: no answer at all."""

    def handle(conn: socket.socket) -> None:
        conn.recv(count)

    return handle


def test_a_server_that_hangs_up_on_everything_fails_every_case_that_needs_a_status() -> None:
    case_list = cases("127.0.0.1")
    with server(hang_up_after(10)) as port:
        checks = list(attacks.run_cases("127.0.0.1", port, case_list))

    passed = {check.id for check in checks if check.ok}
    assert passed == {f"ATK-{case.id}" for case in case_list if case.closed_ok}
    assert passed == {"ATK-HUGE-CHUNK-SIZE"}
    assert {"ATK-TRACE", "ATK-OVERSIZED-BODY", "ATK-HOST-MISSING"} <= {
        check.id for check in checks if not check.ok
    }


def test_a_second_answer_to_a_smuggling_shape_fails() -> None:
    smuggled = WireAnswer(statuses=(405, 404), data=NOT_ALLOWED + NOT_FOUND)
    check = evaluate(Case(id="SM", title="s", payload=b"", expect=frozenset({405})), smuggled)
    assert not check.ok
    assert "a hidden request was served" in check.evidence


def test_forbidden_headers_text_and_leaks_fail_even_with_the_right_status() -> None:
    injected = b"HTTP/1.1 404 \r\nx-injected: yes\r\ncontent-length: 0\r\n\r\n"
    case = Case(
        id="C",
        title="c",
        payload=b"",
        expect=frozenset({404}),
        forbid_headers=("x-injected",),
        forbid_text=(b"evil.example",),
    )
    assert "x-injected" in evaluate(case, WireAnswer(statuses=(404,), data=injected)).evidence
    reflected = NOT_FOUND.replace(b"not found", b"evil.exam") + b"ple"
    assert not evaluate(case, WireAnswer(statuses=(404,), data=reflected)).ok
    traced = b"HTTP/1.1 404 \r\ncontent-length: 35\r\n\r\nTraceback (most recent call last):\n"
    assert "leaks a traceback" in evaluate(case, WireAnswer(statuses=(404,), data=traced)).evidence


# ---- talking to a server ---------------------------------------------------------------------


def test_send_raw_reads_an_answer_and_the_close() -> None:
    with server(answer_and_close(REFUSED)) as port:
        answer = send_raw("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.statuses == (400,)
    assert answer.closed


def test_send_raw_sees_a_smuggled_second_answer_on_a_kept_connection() -> None:
    def two_answers(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(NOT_ALLOWED)
        conn.sendall(NOT_FOUND)
        threading.Event().wait(1.5)  # keep the connection open past the linger

    with server(two_answers) as port:
        answer = send_raw("127.0.0.1", port, b"POST / HTTP/1.1\r\n\r\n", linger=0.5)
    assert answer.statuses == (405, 404)
    assert not answer.closed


def test_send_raw_gives_up_on_silence_within_its_timeout() -> None:
    def silent(conn: socket.socket) -> None:
        _read_head(conn)
        threading.Event().wait(2)

    with server(silent) as port:
        answer = send_raw("127.0.0.1", port, b"GET / HTTP/1.1\r\n\r\n", timeout=0.5)
    assert answer.timed_out
    assert answer.statuses == ()


def test_send_raw_reports_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "connect failed" in send_raw("127.0.0.1", port, b"x", timeout=1).error


def test_slowloris_passes_when_normal_clients_are_still_served() -> None:
    with server(answer_and_close(OK)) as port:
        check = attacks.slowloris(
            "127.0.0.1", port, "h", connections=20, duration=1.5, interval=0.5
        )
    assert check.ok, check.evidence
    assert "20 opened" in check.evidence


def test_slowloris_fails_a_server_that_one_slow_client_can_hold() -> None:
    with server(answer_and_close(OK), threaded=False) as port:
        check = attacks.slowloris("127.0.0.1", port, "h", connections=5, duration=1.5, interval=0.5)
    assert not check.ok
    assert "0/" in check.evidence


def test_a_burst_passes_when_every_connection_is_answered() -> None:
    with server(answer_and_close(OK)) as port:
        check = attacks.burst("127.0.0.1", port, "h", connections=50, timeout=10)
    assert check.ok, check.evidence
    assert "200: 50" in check.evidence


def test_a_burst_fails_when_connections_are_dropped() -> None:
    with server(lambda conn: None) as port:
        check = attacks.burst("127.0.0.1", port, "h", connections=20, timeout=5)
    assert not check.ok
    assert "reset: 20" in check.evidence  # the server closed each without a word
