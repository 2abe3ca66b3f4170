"""The in-process server: Hypercorn's settings, bad input on the wire, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app import server
from app.config import KIB, Settings
from app.errors import MissingExtra, StartupError
from app.logging import AccessLogWriter
from app.service import create_app
from tests.app.support import (
    LOCAL,
    Running,
    parse_response,
    read_response,
    running_server,
    running_service,
)

ROOT = Path(__file__).resolve().parents[2]


def test_hypercorn_is_told_to_stay_quiet_and_keep_connections_past_cloudflared() -> None:
    settings = Settings(grace_period=7, max_header_bytes=4096, max_url_bytes=2048)

    config = server.hypercorn_config(settings, 3)

    assert config.bind == ["fd://3"]
    assert config.include_server_header is False
    assert config.keep_alive_timeout == settings.keep_alive_timeout > 90
    assert config.graceful_timeout == 7
    assert config.h11_max_incomplete_size >= 4096 + 2048  # a head within both limits
    assert config.accesslog is None
    assert all(name != b"server" for name, _ in config.response_headers("h11"))


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(StartupError) as caught:
            server.listen(LOCAL, port)

    message = str(caught.value)
    assert message.startswith(f"cannot listen on {LOCAL}:{port}: ")
    assert "APP_PORT" in message
    assert "\n" not in message


def test_uvloop_is_used_when_installed() -> None:
    factory, name = server.loop_factory("auto")

    assert name == "uvloop"
    assert factory is not None
    assert server.loop_factory("asyncio") == (None, "asyncio")


@pytest.fixture
def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)


@pytest.mark.usefixtures("without_uvloop")
def test_without_uvloop_auto_falls_back_and_a_demand_for_it_stops_start_up() -> None:
    assert server.loop_factory("auto") == (None, "asyncio")
    with pytest.raises(MissingExtra, match="`speed` extra"):
        server.loop_factory("uvloop")


# --- bad input on the wire ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def service_with_slow_route(
    settings: Settings,
) -> AsyncIterator[tuple[Running, asyncio.Event]]:
    """The service plus a /slow route that answers once the returned event is set."""
    log = io.StringIO()
    service = create_app(settings, access_log=AccessLogWriter(log))
    release = asyncio.Event()

    async def slow() -> str:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        return "done"

    service.add_url_rule("/slow", "slow", slow)
    async with running_server(
        service.stack, settings, lifecycle=service.lifecycle, log=log
    ) as running:
        yield running, release


def local(**overrides: object) -> Settings:
    return Settings(host=LOCAL, port=0, **overrides)  # type: ignore[arg-type]


async def assert_closed_after(running: Running, raw: bytes, status: int) -> None:
    answer = await running.exchange(raw)  # reads until the server closes the connection
    response = parse_response(answer)
    assert response.status == status
    assert response.header("server") is None
    assert b"hypercorn" not in answer.lower()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
    ],
    ids=["request-line", "header-without-colon", "bare-cr", "no-host"],
)
async def test_malformed_requests_get_an_error_and_a_closed_connection(
    raw: bytes, status: int
) -> None:
    async with running_service(local()) as running:
        await assert_closed_after(running, raw, status)
        assert (await running.get("/healthz")).status == 200


async def test_a_folded_header_cannot_smuggle_a_response_header() -> None:
    async with running_service(local()) as running:
        # h11 unfolds obsolete line folding into one value with a space in it
        response = await running.get("/", "X-Request-ID: abc\r\n Set-Cookie: stolen=1\r\n")

        assert response.status == 200
        assert response.header("set-cookie") is None
        assert "stolen" not in (response.header("x-request-id") or "stolen")


async def test_an_oversized_header_block_is_431_however_it_arrives() -> None:
    async with running_service(local()) as running:
        whole = f"GET / HTTP/1.1\r\nHost: {LOCAL}\r\nX-Big: {'a' * 20_000}\r\n\r\n".encode()
        await assert_closed_after(running, whole, 431)  # complete in one read: the guard

        reader, writer = await running.connect()
        writer.write(f"GET / HTTP/1.1\r\nHost: {LOCAL}\r\n".encode())
        for _ in range(10):  # trickled in pieces, never complete: Hypercorn's own limit
            writer.write(b"X-Big: " + b"a" * 8000 + b"\r\n")
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()
        assert parse_response(raw).status == 431

        assert (await running.get("/healthz")).status == 200


async def test_a_head_within_the_limits_is_served_however_it_arrives() -> None:
    # A long target and many headers, each within its limit, arriving in pieces: Hypercorn's
    # buffer for an incomplete head must hold both, or it refuses what the guard would serve.
    async with running_service(local(max_header_bytes=16 * KIB, max_url_bytes=8 * KIB)) as running:
        reader, writer = await running.connect()
        writer.write(f"GET /?q={'u' * 7000} HTTP/1.1\r\nHost: {LOCAL}\r\n".encode())
        for number in range(12):
            writer.write(f"X-Header-{number}: {'h' * 1000}\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"Connection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()

        assert parse_response(raw).status == 200


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with running_service(local()) as running:
        reader, writer = await running.connect()
        for _ in range(3):
            writer.write(f"GET / HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode())
            response = await read_response(reader)
            assert (response.status, response.body) == (200, b"Hello World")
        writer.close()
        await writer.wait_closed()


# --- graceful shutdown ----------------------------------------------------------------------


async def test_shutdown_lets_requests_in_flight_finish_then_closes_the_listener() -> None:
    settings = local(shutdown_delay=0.3, grace_period=5)
    async with service_with_slow_route(settings) as (running, release):
        reader, writer = await running.connect()
        writer.write(f"GET /slow HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.1)

        running.stop.set()
        await asyncio.sleep(0.05)
        readiness = await running.get("/readyz")  # during the shutdown delay
        release.set()
        finished = await read_response(reader)
        drained = await asyncio.wait_for(running.task, 10)

        assert readiness.status == 503
        assert json.loads(readiness.body) == {"status": "stopping"}
        assert (finished.status, finished.body) == (200, b"done")
        assert await reader.read(-1) == b""  # closed after the response, not kept alive
        assert drained is True
        with pytest.raises(ConnectionRefusedError):
            await running.get("/healthz")
        writer.close()


async def test_idle_keep_alive_connections_are_closed_at_shutdown() -> None:
    async with running_service(local()) as running:
        reader, writer = await running.connect()
        writer.write(f"GET / HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode())
        await read_response(reader)

        running.stop.set()

        assert await asyncio.wait_for(reader.read(-1), 5) == b""
        writer.close()


async def test_a_request_outliving_the_grace_period_is_cut_off_at_its_end() -> None:
    settings = local(grace_period=0.5)
    async with service_with_slow_route(settings) as (running, _):
        reader, writer = await running.connect()
        writer.write(f"GET /slow HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.1)
        started = time.monotonic()

        running.stop.set()
        drained = await asyncio.wait_for(running.task, 10)
        elapsed = time.monotonic() - started
        answer = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()

    assert drained is False
    assert settings.grace_period <= elapsed < settings.grace_period + 1.5
    # cut off: Hypercorn answers 500 for a request whose app was cancelled before it answered
    assert answer == b"" or parse_response(answer).status == 500


# --- the real process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        port: int = sock.getsockname()[1]
        return port


def start_service(port: int, **env: str) -> subprocess.Popen[str]:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "APP_HOST": LOCAL,
        "APP_PORT": str(port),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        with contextlib.suppress(OSError), socket.create_connection((LOCAL, port), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listened on {port}")


def get(port: int, path: str) -> bytes:
    with socket.create_connection((LOCAL, port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOCAL}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_python_m_app_serves_and_exits_0_on_sigterm(workers: str) -> None:
    port = free_port()
    process = start_service(port, APP_WORKERS=workers)
    try:
        wait_for_port(port, process)
        answers = [get(port, "/") for _ in range(4)]
    finally:
        code, stdout, stderr = stop(process)

    assert all(parse_response(a).body == b"Hello World" for a in answers)
    assert code == 0, stderr
    assert stderr == ""
    entries = [json.loads(line) for line in stdout.splitlines()]
    messages = [e.get("message") for e in entries]
    assert messages[0] in {"listening", "supervising workers"}
    assert entries[0]["address"] == f"http://{LOCAL}:{port}"
    assert messages.count("shutdown started") == int(workers)
    assert messages[-1] == "stopped"
    assert sum(e["logger"] == "app.access" for e in entries) == 4
