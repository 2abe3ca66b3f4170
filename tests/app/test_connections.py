"""Connections: prompt close when the client hangs up, nothing kept after, the cap.

The clients here read the whole answer before closing, as an ordinary client does: one that
closes with the answer unread sends a reset instead of a FIN, and no CLOSE-WAIT can appear.
Every test runs under asyncio and uvloop (the image ships either).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import h11
import hypercorn.asyncio
import hypercorn.asyncio.run
import hypercorn.asyncio.tcp_server
import hypercorn.config
import psutil
import pytest
from hypercorn.config import Config

from app import connections, server
from app.config import Settings
from app.connections import ConnectionGauge
from app.errors import StartupError
from app.logging import AccessLogWriter
from app.metrics import ConnectionCollector, new_registry
from app.service import create_app
from tests.app.support import LOCAL, Running, log_entries, read_response, running_server

#: Run an async test once on asyncio and once on uvloop (tests/app/conftest.py has both).
both_loops = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])
ROOT = Path(__file__).resolve().parents[2]

#: Well under the keep-alive timeout (120 s): a connection still there after this lingers.
SETTLE_SECONDS = 1.0
REQUEST = f"GET / HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode()


def close_wait(port: int) -> int:
    """Sockets of this process on ``port`` whose peer has closed and which are still open."""
    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_CLOSE_WAIT
    )


async def ask_and_hang_up(port: int, clients: int) -> None:
    """``clients`` connections, one after another: connect, GET /, read all of it, close."""
    for _ in range(clients):
        reader, writer = await asyncio.open_connection(LOCAL, port)
        writer.write(REQUEST)
        response = await read_response(reader)
        assert response.status == 200
        writer.close()
        await writer.wait_closed()


async def settled(condition: Callable[[], bool], seconds: float = SETTLE_SECONDS) -> bool:
    """True as soon as ``condition()`` holds, False if it still does not after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, kind))


@contextlib.asynccontextmanager
async def serving(
    settings: Settings | None = None, gauge: ConnectionGauge | None = None
) -> AsyncIterator[Running]:
    settings = settings or Settings(host=LOCAL, port=0)
    service = create_app(settings, access_log=AccessLogWriter(io.StringIO()))
    listener = server.listen(LOCAL, 0)
    port = listener.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(
        server.serve(
            service.stack, settings, listener, lifecycle=service.lifecycle, stop=stop, gauge=gauge
        )
    )
    running = Running(port=port, stop=stop, task=task, lifecycle=service.lifecycle)
    try:  # the socket listens already: connections wait in its backlog until Hypercorn runs
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOCAL, port), timeout=1):
        return True
    return False


# --- prompt close --------------------------------------------------------------------------


@both_loops
async def test_clients_that_hang_up_leave_no_close_wait_and_no_task() -> None:
    gauge = ConnectionGauge(1000)
    async with serving(gauge=gauge) as running:
        await asyncio.sleep(0.1)
        tasks_before = len(asyncio.all_tasks())

        await ask_and_hang_up(running.port, 200)

        assert await settled(lambda: close_wait(running.port) == 0), (
            f"{close_wait(running.port)} sockets still in CLOSE-WAIT"
        )
        assert await settled(lambda: gauge.open == 0)
        assert await settled(lambda: len(asyncio.all_tasks()) <= tasks_before)
        assert gauge.peak >= 1
        assert live(connections.TCPServer) == 0
        assert live(h11.Connection) == 0


@both_loops
async def test_stock_hypercorn_still_keeps_connections_whose_client_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The reason app.connections exists. When this fails, Hypercorn has fixed the bug:
    # drop the override as docs/adr/0013-close-on-client-eof.md says.
    monkeypatch.setattr(hypercorn.asyncio.run, "TCPServer", hypercorn.asyncio.tcp_server.TCPServer)
    app = create_app(Settings(), access_log=AccessLogWriter(io.StringIO())).stack
    listener = server.listen(LOCAL, 0)
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]
    config.keep_alive_timeout = 120
    stop = asyncio.Event()
    task = asyncio.create_task(
        hypercorn.asyncio.serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    try:
        assert await settled(lambda: _accepts(port), 5)
        await ask_and_hang_up(port, 20)
        await asyncio.sleep(SETTLE_SECONDS)

        assert close_wait(port) >= 20
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@both_loops
async def test_a_client_that_half_closes_still_gets_its_answer() -> None:
    async with serving() as running:
        reader, writer = await asyncio.open_connection(LOCAL, running.port)
        writer.write(REQUEST)
        writer.write_eof()  # "I have sent everything": a FIN before the answer arrives

        response = await read_response(reader)
        rest = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()

        assert (response.status, response.body) == (200, b"Hello World")
        assert rest == b""  # then the server closes its side too
        assert await settled(lambda: close_wait(running.port) == 0)


@both_loops
async def test_a_client_gone_mid_request_is_let_go_once_its_answer_is_done() -> None:
    # The client resets while the handler runs: h11 never sees an EOF, so finishing the
    # request would make the connection idle and start the 120 s keep-alive timer.
    settings = Settings(host=LOCAL, port=0)
    service = create_app(settings, access_log=AccessLogWriter(io.StringIO()))
    release = asyncio.Event()

    async def slow() -> str:
        await asyncio.wait_for(release.wait(), 10)
        return "done"

    service.add_url_rule("/slow", "slow", slow)
    async with running_server(service.stack, settings, lifecycle=service.lifecycle) as running:
        sock = socket.create_connection((LOCAL, running.port))
        sock.sendall(f"GET /slow HTTP/1.1\r\nHost: {LOCAL}\r\n\r\n".encode())
        await asyncio.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset
        await asyncio.sleep(0.2)
        assert live(connections.TCPServer) == 1

        release.set()

        assert await settled(lambda: live(connections.TCPServer) == 0)


@both_loops
async def test_clients_that_stay_connected_are_kept_alive() -> None:
    async with serving() as running:
        reader, writer = await asyncio.open_connection(LOCAL, running.port)
        for _ in range(3):
            writer.write(REQUEST)
            assert (await read_response(reader)).status == 200
            await asyncio.sleep(0.3)  # idle between requests, as cloudflared's pool is

        assert not reader.at_eof()
        writer.close()
        await writer.wait_closed()


# --- idle connections ----------------------------------------------------------------------


@both_loops
async def test_an_idle_connection_holds_one_task_and_no_timer_task() -> None:
    async with serving() as running:
        await asyncio.sleep(0.1)
        tasks_before = len(asyncio.all_tasks())
        idle = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection(LOCAL, running.port)
            writer.write(REQUEST)
            assert (await read_response(reader)).status == 200
            idle.append(writer)
        await asyncio.sleep(0.1)

        # one task per connection, reading; Hypercorn alone adds a keep-alive task to each
        assert len(asyncio.all_tasks()) - tasks_before == 20
        for writer in idle:
            writer.close()


@both_loops
async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    async with serving(Settings(host=LOCAL, port=0, keep_alive_timeout=0.5)) as running:
        reader, writer = await asyncio.open_connection(LOCAL, running.port)
        writer.write(REQUEST)
        assert (await read_response(reader)).status == 200
        started = time.monotonic()

        assert await asyncio.wait_for(reader.read(-1), 5) == b""  # the server closed it

        assert 0.4 < time.monotonic() - started < 3
        writer.close()


@both_loops
async def test_a_request_stops_the_keep_alive_timer_and_its_end_restarts_it() -> None:
    async with serving(Settings(host=LOCAL, port=0, keep_alive_timeout=0.6)) as running:
        reader, writer = await asyncio.open_connection(LOCAL, running.port)
        for _ in range(4):  # 4 x 0.3 s idle: past the timeout in total, never at once
            writer.write(REQUEST)
            assert (await read_response(reader)).status == 200
            await asyncio.sleep(0.3)
        assert not reader.at_eof()
        writer.close()


# --- the cap -------------------------------------------------------------------------------


@both_loops
async def test_connections_over_the_cap_are_closed_at_once_and_the_others_served(
    json_logs: io.StringIO,
) -> None:
    gauge = ConnectionGauge(3)
    registry = new_registry()
    ConnectionCollector(gauge, registry)
    async with serving(gauge=gauge) as running:
        kept = [await asyncio.open_connection(LOCAL, running.port) for _ in range(3)]
        assert await settled(lambda: gauge.open == 3)

        reader, writer = await asyncio.open_connection(LOCAL, running.port)
        writer.write(REQUEST)
        with contextlib.suppress(ConnectionError):
            refused_answer = await asyncio.wait_for(reader.read(-1), 5)
            assert refused_answer == b""
        writer.close()

        for kept_reader, kept_writer in kept:  # the open ones are still served
            kept_writer.write(REQUEST)
            assert (await read_response(kept_reader)).status == 200
        kept_writer.close()
        await kept_writer.wait_closed()
        assert await settled(lambda: gauge.open == 2)
        reader, writer = await asyncio.open_connection(LOCAL, running.port)  # room again
        writer.write(REQUEST)
        assert (await read_response(reader)).status == 200
        for _, other in [*kept[:2], (reader, writer)]:
            other.close()

    assert gauge.refused == 1
    assert registry.get_sample_value("http_connections_refused_total") == 1
    assert registry.get_sample_value("http_connections_limit") == 3
    refusals = [e for e in log_entries(json_logs) if e["logger"] == "app.connections"]
    assert len(refusals) == 1
    assert refusals[0]["level"] == "warning"
    assert refusals[0]["max_connections"] == 3
    assert "APP_MAX_CONNECTIONS" in refusals[0]["message"]


def test_refusals_are_logged_at_most_once_per_interval(json_logs: io.StringIO) -> None:
    now = [0.0]
    gauge = ConnectionGauge(0, clock=lambda: now[0])

    for second in range(25):
        now[0] = float(second)
        assert gauge.admit() is False
        assert gauge.admit() is False

    lines = [e for e in log_entries(json_logs) if e["logger"] == "app.connections"]
    assert [e["refused"] for e in lines] == [1, 20, 20]  # at 0 s, 10 s, 20 s
    assert lines[-1]["refused_total"] == 41
    assert gauge.refused == 50


def test_the_cap_is_lowered_to_what_the_descriptor_limit_allows(
    monkeypatch: pytest.MonkeyPatch, json_logs: io.StringIO
) -> None:
    monkeypatch.setattr(connections.resource, "getrlimit", lambda _which: (1024, 4096))

    assert connections.gauge_for(500).limit == 500
    lowered = connections.gauge_for(12_000)

    assert lowered.limit == 1024 - connections.RESERVED_DESCRIPTORS
    warning = log_entries(json_logs)[-1]
    assert warning["capped_at"] == lowered.limit
    assert warning["max_connections"] == 12_000


def test_max_connections_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).max_connections == 12_000
    assert Settings.from_env({"APP_MAX_CONNECTIONS": "500"}).max_connections == 500


def test_install_refuses_a_hypercorn_it_was_not_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hypercorn.asyncio.run, "TCPServer", object)

    with pytest.raises(StartupError, match=r"docs/adr/0013-close-on-client-eof\.md"):
        connections.install()


# --- the real process ----------------------------------------------------------------------


def test_the_service_process_gives_back_what_churn_took() -> None:
    """RSS of ``python -m app`` after 2,000 connect-ask-close clients stays near the baseline."""
    with socket.socket() as probe:
        probe.bind((LOCAL, 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        env={"APP_HOST": LOCAL, "APP_PORT": str(port), "APP_ACCESS_LOG": "0"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _accepts(port):
            assert process.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "the service did not listen within 20 s"
            time.sleep(0.05)
        service = psutil.Process(process.pid)
        asyncio.run(ask_and_hang_up(port, 200))  # warm: every code path has run once
        time.sleep(0.5)
        warm = service.memory_info().rss

        asyncio.run(ask_and_hang_up(port, 2000))
        time.sleep(SETTLE_SECONDS)

        grown = service.memory_info().rss - warm
        lingering = sum(
            1
            for conn in service.net_connections(kind="tcp")
            if conn.status == psutil.CONN_CLOSE_WAIT
        )
        assert lingering == 0
        assert grown < 2 * 1024 * 1024, f"RSS grew {grown / 2**20:.1f} MiB"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_date_header_is_made_once_a_second_and_stays_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = connections.ServerConfig()
    config.include_server_header = False
    now = [1_700_000_000.2]
    monkeypatch.setattr(connections.time, "time", lambda: now[0])
    monkeypatch.setattr(hypercorn.config, "time", lambda: now[0])

    first = config.response_headers("h11")
    now[0] += 0.5  # the same second
    again = config.response_headers("h11")
    now[0] += 1.0
    later = config.response_headers("h11")

    assert first == again == [(b"date", b"Tue, 14 Nov 2023 22:13:20 GMT")]
    assert later == [(b"date", b"Tue, 14 Nov 2023 22:13:21 GMT")]
    again.append((b"x-added", b"by a caller"))  # callers get a list of their own
    assert config.response_headers("h11") == later
