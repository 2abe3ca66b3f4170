"""The service's routes and the error pages Quart renders.

``GET /`` says hello, ``/healthz`` answers while the process runs, ``/readyz`` only between
start-up and shutdown. HEAD works wherever GET does (Quart adds it), and every error page is
the same short plain text, with no traceback and no version in it.
"""

from __future__ import annotations

from typing import Final

from quart import Quart, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.asgi import status_body
from app.lifecycle import Lifecycle

TEXT: Final = "text/plain; charset=utf-8"
JSON: Final = "application/json"
HELLO: Final = b"Hello World"
#: Paths that answer whatever the Host, and without an Access token: the container's probes.
HEALTH_PATHS: Final = ("/healthz", "/readyz")


def describe(app: Quart) -> list[str]:
    """Every route of ``app`` as ``METHODS RULE`` (``GET,HEAD /``), sorted by rule.

    A websocket route's methods read ``WEBSOCKET``.
    """
    lines = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint)):
        methods = "WEBSOCKET" if rule.websocket else ",".join(sorted(rule.methods or ()))
        lines.append(f"{methods} {rule.rule}")
    return lines


def register(app: Quart, lifecycle: Lifecycle) -> None:
    """Add the routes and error pages to ``app``; ``/readyz`` reports ``lifecycle``."""

    async def index() -> Response:
        return Response(HELLO, content_type=TEXT)

    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', content_type=JSON)

    async def readyz() -> Response:
        body = f'{{"status":"{lifecycle.phase.value}"}}'.encode("ascii")
        return Response(body, status=200 if lifecycle.ready else 503, content_type=JSON)

    app.add_url_rule("/", "index", index, methods=["GET"])
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])

    async def started() -> None:
        lifecycle.started()

    app.before_serving(started)
    app.register_error_handler(HTTPException, http_error)


async def http_error(error: HTTPException) -> Response:
    """Every HTTP error as ``<code> <phrase>`` in plain text; a 405 keeps its ``Allow``."""
    code = error.code or 500
    response = Response(status_body(code), status=code, content_type=TEXT)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response
