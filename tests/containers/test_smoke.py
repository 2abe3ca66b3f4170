"""The smoke test's raw HTTP client and its verdicts, against a tiny socket server in a thread."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from builder import smoke
from builder.smoke import Case, SmokeError, check_case, exchange

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nHello World"


class RawServer:
    """Accepts one connection on 127.0.0.1, reads the request head, answers ``reply``, closes.

    ``reply=None`` closes without a word. The thread ends within a few seconds whatever happens.
    """

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = int(self.listener.getsockname()[1])
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except TimeoutError:
            return
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.received:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += chunk
            if self.reply is not None:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[type[RawServer]]:
    started: list[RawServer] = []

    class Tracked(RawServer):
        def __init__(self, reply: bytes | None) -> None:
            super().__init__(reply)
            started.append(self)

    yield Tracked
    for server in started:
        server.close()


def test_exchange_sends_the_request_and_returns_status_and_response(
    serve: type[RawServer],
) -> None:
    server = serve(OK)
    request = smoke._request("/healthz")
    status, response = exchange(server.port, request)
    assert status == 200
    assert response == OK
    assert server.received == request
    assert b"Host: smoke.test\r\n" in request
    assert b"Connection: close\r\n" in request


def test_exchange_reports_a_connection_closed_without_answer(serve: type[RawServer]) -> None:
    server = serve(None)
    assert exchange(server.port, smoke._request("/")) == (None, b"")


def test_exchange_reports_an_answer_that_is_not_http(serve: type[RawServer]) -> None:
    server = serve(b"SSH-2.0-OpenSSH\r\n")
    assert exchange(server.port, smoke._request("/")) == (None, b"SSH-2.0-OpenSSH\r\n")


def test_exchange_keeps_an_early_answer_to_a_body_the_server_would_not_read(
    serve: type[RawServer],
) -> None:
    # A server refusing a large body answers 413 and closes before the client has sent it
    # all. The answer must not be lost because sending the rest failed: the smoke case
    # "body too large" expects exactly this 413.
    server = serve(b"HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\n\r\n")
    status, _ = exchange(server.port, smoke._request("/", "POST", body=b"x" * (32 * 1024 * 1024)))
    assert status == 413


@pytest.mark.parametrize(
    ("reply", "case", "error"),
    [
        (OK, Case("root", b"", 200, b"Hello World"), None),
        (OK, Case("root", b"", 404), "root: expected 404, got 200"),
        (OK, Case("root", b"", 200, b"Goodbye"), "root: body should end with b'Goodbye'"),
        (
            b"HTTP/1.1 200 OK\r\nServer: hypercorn-h11\r\n\r\nHello World",
            Case("root", b"", 200),
            "root: response shows a Server header or a traceback",
        ),
        (
            b"HTTP/1.1 500 Internal\r\n\r\nTraceback (most recent call last):",
            Case("boom", b"", 500),
            "boom: response shows a Server header or a traceback",
        ),
        (b"HTTP/1.1 431 Too Large\r\n\r\n", Case("big header", b"", None), None),
        (None, Case("garbage", b"", None), None),
        (OK, Case("garbage", b"", None), "garbage: expected a 4xx or a closed connection, got 200"),
        (
            b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
            Case("garbage", b"", None),
            "garbage: expected a 4xx or a closed connection, got 502",
        ),
    ],
)
def test_check_case_verdicts(
    serve: type[RawServer], reply: bytes | None, case: Case, error: str | None
) -> None:
    server = serve(reply)
    request = smoke._request("/probe")
    case = Case(case.name, request, case.status, case.body)
    if error is None:
        check_case(server.port, case)
    else:
        with pytest.raises(SmokeError) as caught:
            check_case(server.port, case)
        assert str(caught.value) == error
    assert server.received == request


def test_cases_cover_every_route_and_error_path() -> None:
    by_name = {case.name: case for case in smoke.cases()}
    assert by_name["root"].status == 200
    assert by_name["root"].body == b"Hello World"
    assert by_name["not found"].status == 404
    assert by_name["host not allowed"].status == 400
    assert b"Host: evil.test" in by_name["host not allowed"].request
    too_large = by_name["body too large"].request
    assert len(too_large.split(b"\r\n\r\n", 1)[1]) > 1024 * 1024
    assert by_name["malformed request line"].status is None


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wait_ready_reports_a_service_that_died_with_its_last_line() -> None:
    code = "print('starting'); print('bad APP_PORT'); raise SystemExit(2)"
    with (
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as process,
        pytest.raises(SmokeError, match="exited with 2 before it was ready: bad APP_PORT"),
    ):
        smoke.wait_ready(_unused_port(), process, time.monotonic() + 10)


def test_wait_ready_gives_up_at_the_deadline() -> None:
    started = time.monotonic()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as process:
        try:
            with pytest.raises(SmokeError, match="was not ready within"):
                smoke.wait_ready(_unused_port(), process, time.monotonic() + 0.3)
        finally:
            process.kill()
    assert time.monotonic() - started < 5


def test_launchers_and_environment() -> None:
    chroot = smoke.chroot_launcher("/build/merged")
    assert chroot("app.healthcheck", ["http://x"]) == [
        "/usr/sbin/chroot",
        "--userspec=1000:1000",
        "/build/merged",
        "/usr/bin/python3",
        "-m",
        "app.healthcheck",
        "http://x",
    ]
    traced = smoke.traced_launcher("/usr/bin/python3", "/tmp/trace.txt")
    assert traced("app", []) == ["/usr/bin/python3", "-m", "builder.trace", "/tmp/trace.txt", "app"]
    env = smoke.base_env(PYTHONPATH="/opt/app", HOME="/root")
    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/opt/app",
        "HOME": "/nonexistent",
    }
