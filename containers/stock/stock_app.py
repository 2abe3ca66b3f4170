"""Hello world as a stock Quart user writes it: the benchmark's baseline.

Served the stock way too, by the ``hypercorn`` CLI (``hypercorn stock_app:app``, in the image
``containers/stock/Dockerfile`` builds), with the same security headers as the service added
in an ``after_request`` hook, which is how Quart's documentation suggests adding response
headers. No request ids, no access log, no
guards: the service must beat this while doing more.
"""

from __future__ import annotations

from quart import Quart, Response

app = Quart(__name__)


@app.after_request
async def add_security_headers(response: Response) -> Response:
    """The service's security headers, set one by one on each response."""
    response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = (
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), "
        "fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), "
        "payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
        "serial=(), sync-xhr=(), usb=(), xr-spatial-tracking=()"
    )
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["X-Permitted-Cross-Domain-Policies"] = "none"
    response.headers["X-XSS-Protection"] = "0"
    return response


@app.get("/")
async def index() -> str:
    """The greeting."""
    return "Hello World"
