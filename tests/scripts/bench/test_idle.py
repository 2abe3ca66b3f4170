"""The idle hold counts what a user reads in the report: held, failed, closed by the server."""

from __future__ import annotations

import itertools
import socketserver
import threading
from collections.abc import Iterator

import pytest

from scripts.bench import idle

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer_every: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer_every = answer_every
        self.count = itertools.count()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.request.recv(4096)
        if next(self.server.count) % self.server.answer_every:
            return  # hangs up without an answer
        self.request.sendall(ANSWER)
        self.request.recv(1)  # until the client closes


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    running = _Server(answer_every=request.param)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


@pytest.mark.parametrize("server", [1], indirect=True)
def test_every_answered_connection_is_held(server: _Server) -> None:
    host, port = server.server_address[:2]
    outcome = idle.hold(str(host), int(port), connections=30, seconds=0.1)
    assert (outcome.wanted, outcome.held, outcome.errors) == (30, 30, 0)


@pytest.mark.parametrize("server", [2], indirect=True)
def test_connections_hung_up_on_are_errors_and_let_go(server: _Server) -> None:
    # Half are hung up on before an answer: counted, and closed at once (no writer is left
    # for the garbage collector to find after the loop has closed).
    host, port = server.server_address[:2]
    outcome = idle.hold(str(host), int(port), connections=20, seconds=0.1)
    assert (outcome.held, outcome.errors) == (10, 10)
