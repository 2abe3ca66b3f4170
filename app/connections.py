"""Connections: let go of a client that hung up, cap how many are open, keep idle ones cheap.

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

It also makes an idle keep-alive connection cheaper (ADR 0015, measured there), without
changing what a client sees:

* Hypercorn's keep-alive timer is a task per connection, waiting with ``wait_for`` on the
  worker's "terminated" event: a task, four coroutines, a future and a timeout object for
  every idle connection, all cancelled and made anew around every request. Here it is one
  timer handle (:class:`_KeepAliveTimer`), and the worker's "terminated" event closes the
  idle connections itself when the server shuts down (:class:`_Terminated`).
* The read loop awaits the stream directly when there is no read timeout (there is none),
  instead of through ``wait_for``, and the connection is served without two wrapper frames.
* The h11 protocol's "can read" event is :class:`_Event`, which allocates its list of
  waiters only when someone waits (asyncio's Event makes a deque up front).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable, Generator
from typing import Any, Final

import hypercorn.asyncio.run
import hypercorn.asyncio.tcp_server
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated

from app.errors import StartupError

logger = logging.getLogger(__name__)

#: Descriptors kept free for everything that is not a client connection (listeners, logs,
#: the Access keys fetch, the interpreter's own files).
RESERVED_DESCRIPTORS: Final = 64
#: Least time between two "over the cap" log lines; each says how many were turned away.
REFUSAL_LOG_INTERVAL: Final = 10.0

_Upstream = hypercorn.asyncio.tcp_server.TCPServer
MAX_RECV: Final = hypercorn.asyncio.tcp_server.MAX_RECV


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
    """Hypercorn's settings plus the gauge that caps this listener's connections.

    Its response headers (the Date header; this service sends no Server header) are made once
    a second rather than for every response: Hypercorn formats the date with
    ``wsgiref.handlers.format_date_time`` per response, which a profile of ``GET /`` put at
    2 % of the server's time. Every response still carries the current date.
    """

    connections: ConnectionGauge | None = None
    _headers_second: int = -1
    _headers: tuple[tuple[bytes, bytes], ...] = ()

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        """Hypercorn's headers for every response, remade when the second changes."""
        now = int(time.time())
        if now != self._headers_second or self.include_server_header:
            # The server header names the protocol, so it cannot be shared across them.
            self._headers = tuple(super().response_headers(protocol))
            self._headers_second = now
        return list(self._headers)


class TCPServer(_Upstream):
    """Hypercorn's HTTP/1 and HTTP/2 connection handler, ending when the client leaves.

    Two changes, both about a connection whose read side ended (EOF, reset, read error):
    the idle timer is stopped then, and never restarted after, so the connection ends as
    soon as a request still in flight has been answered. Keep-alive for clients that stay
    connected is untouched. And the leaner idle connection described in the module
    docstring.
    """

    _reading_ended = False
    _admitted: ConnectionGauge | None = None
    _idle_handle: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = self.context
        # Read by the h11 protocol this connection makes (its "can read" event).
        if context.event_class is not _Event:
            context.event_class = _Event
        # Hypercorn sets "terminated" when the worker shuts down; this one then closes the
        # idle connections, as each of Hypercorn's idle tasks would have on seeing it set.
        if not isinstance(context.terminated, _Terminated):
            context.terminated = _Terminated(set_already=context.terminated.is_set())

    @property  # type: ignore[override] # restart()/stop() as AsyncioSingleTask has them
    def idle_task(self) -> _KeepAliveTimer:
        """What Hypercorn's code restarts and stops as the keep-alive timer: a handle here."""
        return _KeepAliveTimer(self)

    @idle_task.setter
    def idle_task(self, _upstream: object) -> None:
        """Hypercorn's __init__ sets its task-based timer here; this class needs none."""

    def __await__(self) -> Generator[Any, None, None]:
        """Serve the connection, unless the listener is at its cap: then close it at once."""
        gauge = self.config.connections if isinstance(self.config, ServerConfig) else None
        if gauge is not None:
            if not gauge.admit():
                # A reset, not a FIN: no TIME-WAIT is left behind, the descriptor is free now.
                self.writer.transport.abort()
                return _nothing().__await__()
            self._admitted = gauge  # released in _close(), which run() always ends with
        return self.run().__await__()

    async def _read_data(self) -> None:
        # Hypercorn's loop, reading straight from the stream when there is no read timeout.
        timeout = self.config.read_timeout
        try:
            while not self.reader.at_eof():
                try:
                    if timeout is None:
                        data = await self.reader.read(MAX_RECV)
                    else:
                        data = await asyncio.wait_for(self.reader.read(MAX_RECV), timeout)
                except (ConnectionError, OSError, TimeoutError):  # ssl.SSLError is an OSError
                    break
                await self.protocol.handle(RawData(data))
            await self.protocol.handle(Closed())
        finally:
            self._reading_ended = True
            self.stop_idle_timer()

    async def protocol_send(self, event: Event) -> None:
        """Hypercorn's, except that an idle connection nobody reads any more is not kept."""
        if isinstance(event, Updated) and event.idle and self._reading_ended:
            return  # nothing more can arrive: let run() finish and close the socket
        await super().protocol_send(event)

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            self.stop_idle_timer()
            if self._admitted is not None:
                self._admitted.release()
                self._admitted = None

    def start_idle_timer(self) -> None:
        """Close this connection after ``keep_alive_timeout`` idle, or at once if shutting down."""
        self.stop_idle_timer()
        terminated = self.context.terminated
        if terminated.is_set():
            self._idle_expired()
            return
        self._idle_handle = self.loop.call_later(self.config.keep_alive_timeout, self._idle_expired)
        if isinstance(terminated, _Terminated):
            terminated.idle.add(self)

    def stop_idle_timer(self) -> None:
        """The connection is busy again, or ending: no keep-alive timer runs for it."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
            terminated = self.context.terminated
            if isinstance(terminated, _Terminated):
                terminated.idle.discard(self)

    def _idle_expired(self) -> None:
        self.stop_idle_timer()
        try:
            # What Hypercorn's idle task does when its wait ends, in the connection's group.
            self._task_group.spawn(self._initiate_server_close)
        except RuntimeError:  # the group is already finished: the connection is closing
            self.writer.close()


class _KeepAliveTimer:
    """The keep-alive timer as Hypercorn's code sees it (restart/stop), kept on the server."""

    __slots__ = ("_server",)

    def __init__(self, server: TCPServer) -> None:
        self._server = server

    async def restart(self, _task_group: object, _action: object) -> None:
        """(Re)arm the timer; Hypercorn passes its task group and its idle coroutine."""
        self._server.start_idle_timer()

    async def stop(self) -> None:
        """Disarm the timer."""
        self._server.stop_idle_timer()


class _Event:
    """Hypercorn's asyncio event (clear/wait/set/is_set) that allocates only when waited on."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    async def clear(self) -> None:
        """Unset the event."""
        self._set = False

    async def wait(self) -> None:
        """Return once the event is set."""
        if self._set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None

    async def set(self) -> None:
        """Set the event and wake every waiter."""
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def is_set(self) -> bool:
        """True while the event is set."""
        return self._set


class _Terminated(_Event):
    """The worker's "terminated" event, which also closes the idle connections when set.

    Hypercorn's idle tasks each waited for this event; here no task waits: setting it closes
    the connections that are idle at that moment, and a connection that turns idle later
    sees it set and closes at once (:meth:`TCPServer.start_idle_timer`).
    """

    __slots__ = ("idle",)

    def __init__(self, *, set_already: bool) -> None:
        super().__init__()
        self._set = set_already
        self.idle: set[TCPServer] = set()

    async def set(self) -> None:
        """Set the event and close every idle connection."""
        await super().set()
        for server in list(self.idle):
            server._idle_expired()


async def _nothing() -> None:
    return None


def install() -> None:
    """Have ``hypercorn.asyncio.serve`` handle every connection with :class:`TCPServer`.

    Raises :class:`StartupError` when the installed Hypercorn no longer has what the override
    replaces, rather than serving with the bug back (or with new ones).
    """
    overridden = ("run", "_read_data", "protocol_send", "_close", "_initiate_server_close")
    missing = [name for name in overridden if not hasattr(_Upstream, name)]
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
