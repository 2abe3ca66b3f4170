"""Connections: let go of a client that hung up, and cap how many are open at once.

Hypercorn (0.17 and 0.18, asyncio and uvloop alike) keeps a connection whose client closed it
for the whole keep-alive timeout: its socket sits in CLOSE-WAIT and its task and objects stay
alive. The cause is in ``hypercorn.asyncio.tcp_server.TCPServer``: once the read loop sees the
client's EOF (or a reset), the h11 protocol has no stream to close, so nothing stops the idle
timer; ``run()`` then waits in its task group for that timer (``keep_alive_timeout``, 120 s
here, see ADR 0004) before it closes the socket. A request still running when the client
leaves restarts the timer as it finishes, with the same effect. ADR 0013 has the whole story,
how to drop this override once Hypercorn fixes it, and the report drafted for upstream.

:class:`TCPServer` is Hypercorn's server with the fix, and with the per-process cap on open
connections (``APP_MAX_CONNECTIONS``): a connection over the cap is closed at once, before a
byte is read, counted and logged, while the open ones keep being served. :func:`install` makes
``hypercorn.asyncio.serve`` use it.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from typing import Final

import hypercorn.asyncio.run
import hypercorn.asyncio.tcp_server
from hypercorn.config import Config
from hypercorn.events import Event, Updated

from app.errors import StartupError

logger = logging.getLogger(__name__)

#: Descriptors kept free for everything that is not a client connection (listeners, logs,
#: the Access keys fetch, the interpreter's own files).
RESERVED_DESCRIPTORS: Final = 64
#: Least time between two "over the cap" log lines; each says how many were turned away.
REFUSAL_LOG_INTERVAL: Final = 10.0

_Upstream = hypercorn.asyncio.tcp_server.TCPServer


class ConnectionGauge:
    """One process's open connections against its cap, and how many the cap turned away."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.open = 0
        self.peak = 0
        self.refused = 0
        self._clock = clock
        self._logged_at: float | None = None
        self._refused_at_log = 0

    def admit(self) -> bool:
        """Count a new connection in; False (and counted as refused) when at the cap."""
        if self.open >= self.limit:
            self.refused += 1
            self._log_refusal()
            return False
        self.open += 1
        self.peak = max(self.peak, self.open)
        return True

    def release(self) -> None:
        """An admitted connection ended."""
        self.open -= 1

    def _log_refusal(self) -> None:
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < REFUSAL_LOG_INTERVAL:
            return
        logger.warning(
            "connections over APP_MAX_CONNECTIONS are closed at once",
            extra={
                "max_connections": self.limit,
                "refused": self.refused - self._refused_at_log,
                "refused_total": self.refused,
            },
        )
        self._logged_at = now
        self._refused_at_log = self.refused


class ServerConfig(Config):
    """Hypercorn's settings plus the gauge that caps this listener's connections."""

    connections: ConnectionGauge | None = None


class TCPServer(_Upstream):
    """Hypercorn's HTTP/1 and HTTP/2 connection handler, ending when the client leaves.

    Two changes, both about a connection whose read side ended (EOF, reset, read error):
    the idle timer is stopped then, and never restarted after, so the connection ends as
    soon as a request still in flight has been answered. Keep-alive for clients that stay
    connected is untouched.
    """

    _reading_ended = False

    async def run(self) -> None:
        """Serve the connection, unless the listener is at its cap: then close it at once."""
        gauge = self.config.connections if isinstance(self.config, ServerConfig) else None
        if gauge is None:
            await super().run()
            return
        if not gauge.admit():
            # A reset, not a FIN: no TIME-WAIT is left behind, and the descriptor is free now.
            self.writer.transport.abort()
            return
        try:
            await super().run()
        finally:
            gauge.release()

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            self._reading_ended = True
            await self.idle_task.stop()

    async def protocol_send(self, event: Event) -> None:
        """Hypercorn's, except that an idle connection nobody reads any more is not kept."""
        if isinstance(event, Updated) and event.idle and self._reading_ended:
            return  # nothing more can arrive: let run() finish and close the socket
        await super().protocol_send(event)


def install() -> None:
    """Have ``hypercorn.asyncio.serve`` handle every connection with :class:`TCPServer`.

    Raises :class:`StartupError` when the installed Hypercorn no longer has what the override
    replaces, rather than serving with the bug back (or with new ones).
    """
    missing = [
        name for name in ("run", "_read_data", "protocol_send") if not hasattr(_Upstream, name)
    ]
    current = hypercorn.asyncio.run.TCPServer  # type: ignore[attr-defined]
    if missing or current not in (_Upstream, TCPServer):
        raise StartupError(
            "the installed Hypercorn changed its asyncio TCP server "
            f"(missing: {', '.join(missing) or 'none'}); app/connections.py overrides it for "
            "prompt close on client EOF: see docs/adr/0013-close-on-client-eof.md to re-check "
            "or drop the override"
        )
    hypercorn.asyncio.run.TCPServer = TCPServer  # type: ignore[attr-defined]


def descriptor_budget() -> int:
    """How many client connections this process's descriptor limit leaves room for."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(1, soft - RESERVED_DESCRIPTORS)


def gauge_for(limit: int) -> ConnectionGauge:
    """The gauge for ``APP_MAX_CONNECTIONS`` = ``limit``, lowered to the descriptor budget."""
    budget = descriptor_budget()
    if limit > budget:
        logger.warning(
            "APP_MAX_CONNECTIONS is above what the descriptor limit allows; capping lower",
            extra={
                "max_connections": limit,
                "capped_at": budget,
                "nofile": budget + RESERVED_DESCRIPTORS,
            },
        )
        limit = budget
    return ConnectionGauge(limit)
