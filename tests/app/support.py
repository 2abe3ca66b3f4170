"""Helpers for the service's tests: an in-process server, raw HTTP, JSON log capture."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app import server
from app.config import Settings
from app.lifecycle import Lifecycle
from app.logging import AccessLogWriter, configure
from app.service import Service, create_app
from app.typing import ASGIApp

LOCAL = "127.0.0.1"
IO_TIMEOUT = 5.0


@dataclass
class Response:
    """A raw HTTP/1.1 response as the client read it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


def parse_response(raw: bytes) -> Response:
    """Split raw response bytes into status, headers and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Response(status=status, headers=headers, body=body, raw=raw)


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response (head plus Content-Length body) from ``reader``."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
    response = parse_response(head)
    length = int(response.header("content-length") or 0)
    body = await asyncio.wait_for(reader.readexactly(length), IO_TIMEOUT) if length else b""
    return Response(status=response.status, headers=response.headers, body=body, raw=head + body)


@dataclass
class Running:
    """A server started by :func:`running_server`."""

    port: int
    stop: asyncio.Event
    task: asyncio.Task[bool]
    lifecycle: Lifecycle
    log: io.StringIO = field(default_factory=io.StringIO)

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return f"http://{LOCAL}:{self.port}"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A fresh connection to the server."""
        return await asyncio.wait_for(asyncio.open_connection(LOCAL, self.port), IO_TIMEOUT)

    async def exchange(self, raw: bytes) -> bytes:
        """Send ``raw`` on a new connection and read until the server closes it."""
        reader, writer = await self.connect()
        try:
            writer.write(raw)
            await writer.drain()
            return await asyncio.wait_for(reader.read(-1), IO_TIMEOUT)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def get(self, path: str, headers: str = "") -> Response:
        """GET ``path`` on a new connection (Connection: close)."""
        raw = await self.exchange(
            f"GET {path} HTTP/1.1\r\nHost: {LOCAL}\r\nConnection: close\r\n{headers}\r\n".encode()
        )
        return parse_response(raw)

    def access_lines(self) -> list[dict[str, Any]]:
        """The JSON access-log lines written so far."""
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


@contextlib.asynccontextmanager
async def running_server(
    app: ASGIApp,
    settings: Settings,
    *,
    lifecycle: Lifecycle | None = None,
    log: io.StringIO | None = None,
    metrics: tuple[ASGIApp, socket.socket] | None = None,
) -> AsyncIterator[Running]:
    """Serve ``app`` in this event loop on an ephemeral loopback port; stop it on exit."""
    listener = server.listen(LOCAL, 0)
    port = listener.getsockname()[1]
    stop = asyncio.Event()
    lifecycle = lifecycle or Lifecycle()
    task = asyncio.create_task(
        server.serve(app, settings, listener, lifecycle=lifecycle, metrics=metrics, stop=stop)
    )
    running = Running(
        port=port, stop=stop, task=task, lifecycle=lifecycle, log=log or io.StringIO()
    )
    try:
        await _until_serving(running)
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, settings.grace_period + settings.shutdown_delay + 10)


async def _until_serving(running: Running) -> None:
    for _ in range(100):
        if running.task.done():
            running.task.result()
        with contextlib.suppress(OSError):
            response = await running.get("/healthz")
            if response.status == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the test server did not start")


@contextlib.asynccontextmanager
async def running_service(settings: Settings | None = None) -> AsyncIterator[Running]:
    """The whole service (create_app) served in-process, access lines captured."""
    settings = settings or Settings(host=LOCAL, port=0)
    log = io.StringIO()
    service = create_app(settings, access_log=AccessLogWriter(log))
    async with running_server(
        service.stack, settings, lifecycle=service.lifecycle, log=log
    ) as running:
        yield running


def make_service(**overrides: Any) -> tuple[Service, io.StringIO]:
    """A service for ``Settings(**overrides)`` whose access lines go to the returned buffer."""
    log = io.StringIO()
    return create_app(Settings(**overrides), access_log=AccessLogWriter(log)), log


def access_lines(log: io.StringIO) -> list[dict[str, Any]]:
    """The JSON lines in ``log``."""
    return [json.loads(line) for line in log.getvalue().splitlines()]


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Route every logger through the service's JSON formatter into a buffer, then restore."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("hypercorn.error").level)
    buffer = io.StringIO()
    configure("debug", stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("hypercorn.error").setLevel(saved[2])


def log_entries(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The JSON objects logged into ``buffer``."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    http_version: str = "1.1",
    client: tuple[str, int] | None = ("198.51.100.7", 40000),
) -> dict[str, Any]:
    """An HTTP scope as Hypercorn builds it (header names lower-case)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.1"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", b"example.com")],
        "client": client,
        "server": ("127.0.0.1", 8080),
        "state": {},
        "extensions": {},
    }


@dataclass
class Exchange:
    """What an ASGI app sent for one request."""

    messages: list[dict[str, Any]]

    @property
    def status(self) -> int:
        """The response status."""
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The response headers as sent."""
        return list(self.messages[0].get("headers", []))

    def header(self, name: bytes) -> bytes | None:
        """The first value of ``name`` (lower-case), or None."""
        return next((value for key, value in self.headers if key.lower() == name), None)

    @property
    def body(self) -> bytes:
        """Every body message's bytes, joined."""
        return b"".join(m.get("body", b"") for m in self.messages[1:])


async def call(app: ASGIApp, scope: dict[str, Any], body: list[bytes] | None = None) -> Exchange:
    """Run one request through ``app`` the way Hypercorn does.

    ``receive`` yields ``body`` as request chunks; after them it waits until the response is
    complete and then reports the client gone, as Hypercorn does once a response ends.
    """
    chunks = list(body or [b""])
    sent: list[dict[str, Any]] = []
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    await asyncio.wait_for(app(scope, receive, send), IO_TIMEOUT)
    await asyncio.sleep(0)  # let callbacks queued for the end of this loop turn run (log flush)
    return Exchange(sent)
