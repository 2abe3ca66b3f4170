"""``python -m app.healthcheck``: exit 0 only on a 200 in time, else 1 and one line why."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.healthcheck import main
from tests.app.support import running_service

ROOT = Path(__file__).resolve().parents[2]


class Handler(BaseHTTPRequestHandler):
    """Answers /ok with 200, /down with 503, /slow after a long pause."""

    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(3)
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return  # keep the test output clean


@pytest.fixture
def http_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_200_is_healthy(http_server: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"http://127.0.0.1:{http_server}/ok"]) == 0
    assert capsys.readouterr().err == ""


def test_another_status_is_unhealthy_and_says_which(
    http_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{http_server}/down"

    assert main([url]) == 1
    assert (
        capsys.readouterr().err == f"unhealthy: {url} answered 503 Service Unavailable, not 200\n"
    )


def test_a_refused_connection_is_unhealthy(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/healthz"

    assert main([url]) == 1
    assert capsys.readouterr().err == (
        f"unhealthy: {url} refused the connection (is the service listening?)\n"
    )


def test_a_slow_answer_is_unhealthy_within_the_timeout(
    http_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{http_server}/slow"

    assert main([url, "--timeout", "0.3"]) == 1
    assert capsys.readouterr().err == f"unhealthy: {url} did not answer within 0.3 s\n"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:8080/healthz", "http://:80/"])
def test_a_bad_url_is_unhealthy(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([url]) == 1
    assert capsys.readouterr().err == f"unhealthy: {url} is not an http:// or https:// URL\n"


def test_the_default_url_follows_app_port(
    http_server: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_PORT", str(http_server))

    assert main([]) == 1  # the fake server answers /healthz with 503
    assert f"http://127.0.0.1:{http_server}/healthz answered 503" in capsys.readouterr().err


def test_a_bad_app_port_is_unhealthy_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_PORT", "x")

    assert main([]) == 1
    assert capsys.readouterr().err == "unhealthy: APP_PORT must be an integer 1-65535, got 'x'\n"


def test_it_imports_nothing_but_the_standard_library() -> None:
    probe = (
        "import sys, app.healthcheck\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'quart', 'hypercorn', 'werkzeug', 'prometheus_client', 'jwt'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.stdout.strip() == "[]", result.stderr


async def test_it_probes_the_real_service() -> None:
    async with running_service() as running:
        healthy = await asyncio.to_thread(main, [f"{running.url}/healthz"])
        missing = await asyncio.to_thread(main, [f"{running.url}/missing"])

    assert (healthy, missing) == (0, 1)
