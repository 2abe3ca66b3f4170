"""``python -m app.healthcheck [URL]``: exit 0 when URL answers 200 in time, else 1.

For images with no shell and no curl: Docker's ``HEALTHCHECK`` and compose's ``healthcheck``
run it directly. It uses the standard library only and imports nothing of Quart, so a probe
every few seconds stays cheap. On failure it prints one line on stderr saying why.

The default URL is ``http://127.0.0.1:<APP_PORT>/healthz``.
"""

from __future__ import annotations

import argparse
import http.client
import sys
from urllib.parse import urlsplit

from app.config import SECONDS, Settings
from app.errors import ConfigError

DEFAULT_TIMEOUT = 3 * SECONDS


class ProbeFailed(Exception):
    """The URL did not answer 200 in time; the message says what happened instead."""


def probe(url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Return when ``url`` answers 200 within ``timeout`` seconds; else :class:`ProbeFailed`."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ProbeFailed(f"{url} is not an http:// or https:// URL")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    try:
        port = parts.port
    except ValueError:
        raise ProbeFailed(f"{url} has an invalid port") from None
    connection = connection_class(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers={"User-Agent": "app-healthcheck"})
        response = connection.getresponse()
        response.read(64 * 1024)
    except TimeoutError:
        raise ProbeFailed(f"{url} did not answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise ProbeFailed(f"{url} refused the connection (is the service listening?)") from None
    except (OSError, http.client.HTTPException) as error:
        raise ProbeFailed(f"{url} failed: {error or type(error).__name__}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise ProbeFailed(f"{url} answered {response.status} {response.reason}, not 200")


def main(argv: list[str] | None = None) -> int:
    """Probe the URL; 0 when healthy, 1 (and one line on stderr) when not."""
    parser = argparse.ArgumentParser(
        prog="python -m app.healthcheck",
        description="Exit 0 when URL answers 200 within the timeout, else 1.",
    )
    parser.add_argument("url", nargs="?", help="default: http://127.0.0.1:<APP_PORT>/healthz")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        url = args.url or f"http://127.0.0.1:{Settings.from_env().port}/healthz"
        probe(url, args.timeout)
    except (ProbeFailed, ConfigError) as error:
        sys.stderr.write(f"unhealthy: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
