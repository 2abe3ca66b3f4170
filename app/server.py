"""Serve an ASGI app with Hypercorn in this process, and stop it gracefully.

``python -m app`` (and ``python -m app.ceiling``) end up in :func:`run`. It binds the listener
itself (so a taken port is one clear line and exit 2, and the log names the real port), picks
the event loop (uvloop when installed), and runs ``hypercorn.asyncio.serve`` on it: no
supervisor process and no resource tracker next to the worker, unlike the ``hypercorn`` CLI.
With ``APP_WORKERS`` > 1 the process forks that many workers sharing the listener and
supervises them.

Shutdown, on SIGTERM or SIGINT:

1. readiness turns 503 (``/readyz``), and stays so for ``APP_SHUTDOWN_DELAY`` seconds;
2. the listener closes, and idle keep-alive connections are closed;
3. requests in flight get ``APP_GRACE_PERIOD`` seconds to finish, then are cancelled;
4. Quart's shutdown hooks run, the last log lines are flushed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, Final, cast

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.typing import Framework

from app import connections
from app.config import KIB, SECONDS, Settings
from app.connections import ConnectionGauge, ServerConfig
from app.errors import MissingExtra, StartupError
from app.lifecycle import Lifecycle
from app.typing import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

#: Pending connections the kernel queues for the listener.
BACKLOG: Final = 1024
#: Room in a request head for the method, the version and the line ends, beyond its limits.
REQUEST_LINE_BYTES: Final = 1 * KIB
#: Time Hypercorn gets after the grace period to unwind and run shutdown hooks.
SHUTDOWN_MARGIN: Final = 2 * SECONDS
_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def hypercorn_config(
    settings: Settings, fd: int, gauge: ConnectionGauge | None = None
) -> ServerConfig:
    """Hypercorn's settings for serving on the listening socket with descriptor ``fd``.

    ``gauge`` caps the connections open on it (None: no cap).
    """
    config = ServerConfig()
    config.connections = gauge
    config.bind = [f"fd://{fd}"]
    config.backlog = BACKLOG
    config.include_server_header = False  # Hypercorn would say "server: hypercorn-h11"
    config.keep_alive_timeout = settings.keep_alive_timeout  # > cloudflared's 90 s: see config
    config.graceful_timeout = settings.grace_period
    # h11 bounds the head it buffers while incomplete (request line and headers); the guard
    # checks target and headers each against its own limit once the head is complete. A head
    # within both must pass h11 however it arrives, so that refusals come from the guard.
    config.h11_max_incomplete_size = (
        settings.max_header_bytes + settings.max_url_bytes + REQUEST_LINE_BYTES
    )
    config.accesslog = None  # the service writes its own JSON access lines
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening; :class:`StartupError` if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port}: {error.strerror or error}; "
            "stop what uses that port or set APP_PORT / APP_HOST"
        ) from None
    sock.setblocking(False)
    return sock


def loop_factory(setting: str) -> tuple[LoopFactory | None, str]:
    """The event loop factory for ``APP_LOOP`` (None: asyncio's default) and its name."""
    if setting == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if setting == "uvloop":
            raise MissingExtra("APP_LOOP=uvloop", "speed", "uvloop", "set APP_LOOP=auto") from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


async def serve(
    app: ASGIApp,
    settings: Settings,
    listener: socket.socket,
    *,
    lifecycle: Lifecycle,
    metrics: tuple[ASGIApp, socket.socket] | None = None,
    stop: asyncio.Event | None = None,
    gauge: ConnectionGauge | None = None,
) -> bool:
    """Serve ``app`` on ``listener`` until SIGTERM/SIGINT or ``stop`` is set.

    Hypercorn takes the listener over (and closes it): ``listener`` is detached here, so that
    two socket objects never own, and close, one descriptor. ``gauge`` counts and caps the
    listener's connections (default: a new one for ``APP_MAX_CONNECTIONS``). Returns True
    when every request in flight finished within the grace period, False when some were cut
    off.
    """
    gauge = gauge or connections.gauge_for(settings.max_connections)
    connections.install()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event() if stop is None else stop
    requests = _Requests(app)

    def on_signal(signum: signal.Signals) -> None:
        if not stop.is_set():
            logger.info(
                "shutdown started",
                extra={"signal": signum.name, "grace_period": settings.grace_period},
            )
        stop.set()

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)

    async def shutdown_trigger() -> None:
        await stop.wait()
        lifecycle.stopping()
        if settings.shutdown_delay:
            await asyncio.sleep(settings.shutdown_delay)

    config = hypercorn_config(settings, listener.detach(), gauge)
    servers = [_serve_one(requests, config, shutdown_trigger)]
    if metrics is not None:
        metrics_app, metrics_listener = metrics
        metrics_config = hypercorn_config(settings, metrics_listener.detach())
        servers.append(_serve_one(metrics_app, metrics_config, shutdown_trigger))
    serving = asyncio.gather(*servers)
    stopping = asyncio.ensure_future(stop.wait())
    waiters: set[asyncio.Future[Any]] = {serving, stopping}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # a server that ended by itself failed: raise its error
            return True
        try:
            grace = settings.shutdown_delay + settings.grace_period
            await asyncio.wait_for(asyncio.shield(serving), grace)
        except TimeoutError:
            # Hypercorn enforces the grace period itself only on Python 3.11: from 3.12 it
            # first awaits Server.wait_closed(), which waits for every connection. So the
            # requests still running are cancelled here, and Hypercorn gets a moment to finish.
            await requests.cancel_all()
            try:
                await asyncio.wait_for(asyncio.shield(serving), SHUTDOWN_MARGIN)
            except TimeoutError:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
        return requests.cut_off == 0
    finally:
        stopping.cancel()
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)


class _Requests:
    """Tracks the HTTP requests in flight, to cut them off (and count them) at the deadline."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cut_off = 0
        self._running: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        self._running.add(task)
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            self.cut_off += 1
            raise
        finally:
            self._running.discard(task)

    async def cancel_all(self) -> None:
        """Cancel every request still running and wait (briefly) for them to unwind."""
        running = list(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=SHUTDOWN_MARGIN)


async def _serve_one(
    app: ASGIApp, config: ServerConfig, shutdown_trigger: Callable[[], Any]
) -> None:
    await hypercorn_serve(cast(Framework, app), config, shutdown_trigger=shutdown_trigger)


def run(
    app: ASGIApp,
    settings: Settings,
    *,
    lifecycle: Lifecycle,
    metrics_app: ASGIApp | None = None,
    flush: Callable[[], None] | None = None,
    gauge: ConnectionGauge | None = None,
) -> int:
    """Serve ``app`` as ``settings`` say until told to stop; the process exit code.

    ``metrics_app`` is served on ``APP_METRICS_PORT``; ``flush`` runs once serving ended
    (the access log's last lines); ``gauge`` caps the open connections (default: a new one
    for ``APP_MAX_CONNECTIONS``; each worker process counts its own). Raises
    :class:`StartupError` when it cannot start.
    """
    factory, loop_name = loop_factory(settings.loop)
    gauge = gauge or connections.gauge_for(settings.max_connections)
    listener = listen(settings.host, settings.port)
    metrics_listener = None
    if metrics_app is not None and settings.metrics_port is not None:
        metrics_listener = listen(settings.metrics_host, settings.metrics_port)
    details = {
        "address": _url(listener),
        "metrics": f"{_url(metrics_listener)}/metrics" if metrics_listener else None,
        "loop": loop_name,
        "workers": settings.workers,
        "keep_alive_timeout": settings.keep_alive_timeout,
        "max_connections": gauge.limit,
        "grace_period": settings.grace_period,
    }
    worker = _Worker(
        app=app,
        settings=settings,
        listener=listener,
        lifecycle=lifecycle,
        metrics=(metrics_app, metrics_listener) if metrics_app and metrics_listener else None,
        loop_factory=factory,
        flush=flush,
        gauge=gauge,
    )
    # Everything built so far (modules, the app) lives as long as the process. Freezing it keeps
    # the collector from walking it again on every full collection, and keeps forked workers
    # from copying its memory pages: gc.freeze's documented use. Measured (on a noisy host):
    # 405-418 us of CPU per request with it, 424-504 us without.
    gc.collect()
    gc.freeze()
    if settings.workers == 1:
        logger.info("listening", extra=details)
        return worker.run()
    logger.info("supervising workers", extra=details)
    return _supervise(worker, settings.workers)


class _Worker:
    """One serving process's job: run the loop, serve, flush, report how it ended."""

    def __init__(
        self,
        *,
        app: ASGIApp,
        settings: Settings,
        listener: socket.socket,
        lifecycle: Lifecycle,
        metrics: tuple[ASGIApp, socket.socket] | None,
        loop_factory: LoopFactory | None,
        flush: Callable[[], None] | None,
        gauge: ConnectionGauge,
    ) -> None:
        self.app = app
        self.settings = settings
        self.listener = listener
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.loop_factory = loop_factory
        self.flush = flush
        self.gauge = gauge

    def run(self) -> int:
        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            drained = runner.run(
                serve(
                    self.app,
                    self.settings,
                    self.listener,
                    lifecycle=self.lifecycle,
                    metrics=self.metrics,
                    gauge=self.gauge,
                )
            )
        if self.flush is not None:
            self.flush()
        if drained:
            logger.info("stopped")
        else:
            logger.warning(
                "stopped; requests still running after the grace period were cut off",
                extra={"grace_period": self.settings.grace_period},
            )
        return 0


def _supervise(worker: _Worker, count: int) -> int:
    """Fork ``count`` workers on the shared listener; forward SIGTERM/SIGINT; reap them."""
    children: dict[int, int] = {}
    for number in range(count):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: serve, then leave without running the parent's code
            code = 1
            try:
                code = worker.run()
            except Exception:  # os._exit below would swallow the traceback: log it first
                logger.exception("worker %d failed", number)
            finally:
                sys.stdout.flush()
                os._exit(code)
        children[pid] = number
    worker.listener.close()  # the workers hold their own copies

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for signum in _SIGNALS:
        signal.signal(signum, forward)

    exit_code = 0
    while children:
        pid, status = os.wait()
        children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not stopping:
            logger.error("worker %d exited with %d", pid, code)
            exit_code = 1
            if not stopping:  # a worker died on its own: stop the rest, let the host restart
                forward(signal.SIGTERM, None)
    logger.info("stopped")
    return exit_code


def _url(listener: socket.socket | None) -> str:
    if listener is None:
        return ""
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
