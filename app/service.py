"""The application: Quart with the routes, wrapped in the service's ASGI middleware.

:func:`create_app` builds it once at start-up from the settings. The middleware, outermost
first, each only when configured:

    RequestId       id for every request, echoed in X-Request-ID
    ClientIP        client address from trusted proxy headers       (APP_PROXY_HOPS > 0)
    AccessLog       one JSON line per request                       (APP_ACCESS_LOG)
    Metrics         request counter and latency histogram           (APP_METRICS_PORT)
    SecurityHeaders the header list built once; Server dropped
    InputGuard      431 / 414 / 400 (Host, framing) / 413 before Quart parses anything
    AccessGuard     403 without a valid Cloudflare Access token     (APP_ACCESS_TEAM)
    Quart           the routes and Quart's own error pages

so a guard's refusal still gets the security headers, a request id and a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import quart.wrappers.base
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from hypercorn.typing import Scope as HypercornScope
from quart import Quart, Response
from quart.asgi import ASGIHTTPConnection, _handle_exception
from quart.sessions import NullSession, SecureCookieSession, SecureCookieSessionInterface
from quart.signals import appcontext_tearing_down, request_tearing_down
from quart.typing import ResponseReturnValue, ResponseTypes
from quart.utils import encode_headers
from quart.wrappers import BaseRequestWebsocket, Request
from quart.wrappers.response import DataBody

from app import routes
from app.access import (
    CERTS_PATH,
    AccessGuard,
    Fetcher,
    SigningKeys,
    TokenVerifier,
    fetch_url,
    require_pyjwt,
)
from app.config import Settings
from app.guard import InputGuard
from app.headers import SecurityHeaders, security_headers
from app.lifecycle import Lifecycle
from app.logging import AccessLog, AccessLogWriter
from app.proxy import ClientIP
from app.requestid import RequestId
from app.typing import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

P = ParamSpec("P")
T = TypeVar("T")


class _NeverRaised(Exception):
    """Stands for an error the installed Quart does not have."""


#: Quart 0.23 (Python 3.13, the image) raises it when the client left before the answer;
#: Quart 0.22 (Python < 3.13) has none.
ClientDisconnectedError: type[Exception] = getattr(
    quart.wrappers.base, "ClientDisconnectedError", _NeverRaised
)


class _HTTPConnection(ASGIHTTPConnection):
    """Quart's HTTP handling, minus what a hello-world request does not need.

    - Quart runs each request as two tasks, one reading the body and one running the handler,
      and waits for the first to finish. A request with neither Content-Length nor
      Transfer-Encoding (over HTTP/1.x, the only ways to send a body) has nothing to read, so
      its handler runs directly. The cost: such a handler is not cancelled when its client
      disconnects mid-request, which for handlers that finish in microseconds changes nothing.
    - Quart sends a body as a data message and then an empty closing one; a response whose
      body is already in memory goes out as one message, one pass through the middleware.
    - Quart bounds the sending of every response with ``asyncio.wait_for``, even with no
      timeout set (RESPONSE_TIMEOUT is None here, see create_app): a timeout context per
      request for nothing. A response with a timeout of its own still gets it.
    """

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if _may_have_body(cast(Scope, self.scope)):
            await super().__call__(receive, send)
            return
        request = self._create_request_from_scope(send)
        request.body.set_complete()
        await self.handle_request(request, send)

    async def handle_request(self, request: Request, send: ASGISendCallable) -> None:
        """Quart's (0.22 and 0.23), sending without wait_for when no timeout applies."""
        try:
            response = await self.app.handle_request(request)
        except ClientDisconnectedError:
            return
        except Exception as error:
            response = await _handle_exception(self.app, error)
        timeout = self.app.config["RESPONSE_TIMEOUT"]
        if isinstance(response, Response) and response.timeout is not Ellipsis:
            timeout = response.timeout
        if timeout is None:
            await self._send_response(send, response)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._send_response(send, response), timeout=timeout)

    async def _send_response(self, send: ASGISendCallable, response: ResponseTypes) -> None:
        body = response.response
        if not isinstance(response, Response) or not isinstance(body, DataBody):
            await super()._send_response(send, response)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": encode_headers(response.headers),
                "trailers": False,
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": body.data[body.begin : body.end],
                "more_body": False,
            }
        )


def _may_have_body(scope: Scope) -> bool:
    if scope["http_version"] not in {"1.0", "1.1"}:
        return True  # HTTP/2 and /3 send bodies without announcing them in headers
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


class _NoSessions(SecureCookieSessionInterface):
    """Sessions stay off (there is no secret key); every request shares one empty session.

    Quart otherwise builds a fresh read-only ``NullSession`` for each request, after asking
    for a signing serializer that cannot exist without the key.
    """

    _shared = NullSession()

    async def open_session(
        self, app: Quart, request: BaseRequestWebsocket
    ) -> SecureCookieSession | None:
        """The shared empty session while there is no secret key, else Quart's own."""
        if not app.secret_key:
            return self._shared
        return await super().open_session(app, request)

    async def make_null_session(self, app: Quart) -> NullSession:
        """The one shared, read-only, empty session."""
        return self._shared


def _registered(hooks: dict[Any, list[Any]] | list[Any]) -> bool:
    """True when ``hooks`` (a list, or lists by blueprint name) holds a function."""
    if isinstance(hooks, dict):
        return any(hooks.values())
    return bool(hooks)


class Service(Quart):
    """The Quart app of this service; calling it runs the whole middleware stack.

    A request's walk through Quart asks, at each step, for hooks the app may have registered:
    before-request functions, teardown functions, signal receivers. Where none is registered,
    the steps below skip the walk (a profile of ``GET /`` under wrk put Quart's own steps at
    most of the service's cost over the raw ASGI ceiling; docs/adr/0015). Registering a hook
    or connecting a receiver brings Quart's step back, unchanged.
    """

    asgi_http_class = _HTTPConnection
    session_interface = _NoSessions()

    def __init__(self, lifecycle: Lifecycle) -> None:
        super().__init__("app.service", static_folder=None, template_folder=None)
        self.lifecycle = lifecycle
        self.stack: ASGIApp = cast(ASGIApp, self.asgi_app)
        self.access_log: AccessLogWriter | None = None
        self.metrics_registry: CollectorRegistry | None = None

    async def __call__(
        self, scope: HypercornScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Serve one ASGI scope through the middleware stack."""
        await self.stack(cast(Scope, scope), cast(Receive, receive), cast(Send, send))

    def ensure_async(
        self, func: Callable[P, Awaitable[T]] | Callable[P, T]
    ) -> Callable[P, Awaitable[T]]:
        """Quart's, with a coroutine function (or method) recognised from its code flags.

        Quart runs ``inspect.iscoroutinefunction`` (which unwraps partials and reads markers)
        on every view, hook and session call of every request; anything that is not plainly
        a coroutine function still goes through it.
        """
        code = getattr(getattr(func, "__func__", func), "__code__", None)
        if code is not None and code.co_flags & inspect.CO_COROUTINE:
            return cast("Callable[P, Awaitable[T]]", func)  # a string: nothing built per call
        return super().ensure_async(func)

    async def preprocess_request(self, *args: Any, **kwargs: Any) -> ResponseReturnValue | None:
        """Quart's, when a URL value preprocessor or a before-request function is registered."""
        if _registered(self.url_value_preprocessors) or _registered(self.before_request_funcs):
            return await super().preprocess_request(*args, **kwargs)
        return None

    async def do_teardown_request(self, *args: Any, **kwargs: Any) -> None:
        """Quart's, when a teardown function or a ``request_tearing_down`` receiver exists."""
        if _registered(self.teardown_request_funcs) or request_tearing_down.receivers:
            await super().do_teardown_request(*args, **kwargs)

    async def do_teardown_appcontext(self, *args: Any, **kwargs: Any) -> None:
        """Quart's, when an app teardown function or an ``appcontext_tearing_down`` receiver
        exists."""
        if _registered(self.teardown_appcontext_funcs) or appcontext_tearing_down.receivers:
            await super().do_teardown_appcontext(*args, **kwargs)


def create_app(
    settings: Settings,
    *,
    lifecycle: Lifecycle | None = None,
    access_log: AccessLogWriter | None = None,
    fetch_keys: Fetcher = fetch_url,
) -> Service:
    """Build the service for ``settings``.

    ``access_log`` receives the per-request lines (default: a writer to stdout);
    ``fetch_keys`` downloads the Access JWKS (tests pass one that needs no network).
    Raises :class:`~app.errors.MissingExtra` when Access is configured without PyJWT.
    """
    if settings.access_required:
        require_pyjwt()
    service = Service(lifecycle or Lifecycle())
    service.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        # Never re-raise into the server: an error is a logged 500, in tests as in production.
        PROPAGATE_EXCEPTIONS=False,
        # Quart bounds the sending of each response by running it in a task under wait_for
        # (60 s): a task per request, ~5 % of a hello world. Responses here are a few bytes
        # written to the socket buffer at once, and the grace period bounds shutdown.
        RESPONSE_TIMEOUT=None,
    )
    routes.register(service, service.lifecycle)

    stack = service.stack
    team_domain = settings.access_team_domain
    if team_domain is not None:
        keys = SigningKeys(team_domain + CERTS_PATH, fetch_keys)
        verifier = TokenVerifier(
            team_domain=team_domain,
            audiences=settings.access_audiences,
            keys=keys,
        )
        stack = AccessGuard(stack, verifier, open_paths=routes.HEALTH_PATHS)
    stack = InputGuard(
        stack,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_url_bytes=settings.max_url_bytes,
        allowed_hosts=settings.allowed_hosts,
        open_paths=routes.HEALTH_PATHS,
    )
    stack = SecurityHeaders(stack, security_headers(settings))
    if settings.metrics_port is not None:
        from app.metrics import Metrics, new_registry

        registry = new_registry()
        service.metrics_registry = registry
        stack = Metrics(stack, registry)
    if settings.access_log:
        service.access_log = access_log or AccessLogWriter()
        stack = AccessLog(stack, service.access_log)
    if settings.proxy_hops:
        stack = ClientIP(stack, hops=settings.proxy_hops, header=settings.client_ip_header)
    service.stack = RequestId(stack)
    return service
