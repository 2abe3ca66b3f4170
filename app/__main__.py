"""``python -m app``: serve the service until SIGTERM or SIGINT.

Exit codes: 0 after a clean shutdown; 2 when it cannot start as configured (a bad ``APP_*``
value, a missing extra, a taken port), with one line on stderr saying what to change; 1 on
anything else, logged as a JSON line with its traceback.

``python -m app --routes`` prints the routes instead, one ``METHODS RULE`` line each (as
``flask routes`` does), and exits 0; the image build requests every parameter-free GET route
it lists (containers/builder/smoke.py).
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.errors import StartupError

DESCRIPTION = (
    "Serve the service (configured by APP_* environment variables) until SIGTERM or SIGINT."
)


def main(argv: list[str] | None = None) -> int:
    """Run the service; the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m app", description=DESCRIPTION)
    parser.add_argument(
        "--routes", action="store_true", help="print the routes (METHODS RULE) and exit"
    )
    args = parser.parse_args(argv)
    try:
        if args.routes:
            return _print_routes()
        return _serve()
    except StartupError as error:
        print(error, file=sys.stderr)
        return 2
    except Exception:
        # Anything else is a bug; log it as JSON (traceback included) rather than raw on stderr.
        logging.getLogger("app").exception("the service stopped on an unexpected error")
        return 1


def _print_routes() -> int:
    from app.config import Settings
    from app.routes import describe
    from app.service import create_app

    for line in describe(create_app(Settings.from_env())):
        print(line)
    return 0


def _serve() -> int:
    # Imported here so that a bad setting is reported before Quart's import time is paid.
    from app.config import Settings

    settings = Settings.from_env()

    from app import connections, server
    from app.logging import configure
    from app.service import create_app

    configure(settings.log_level)
    service = create_app(settings)
    gauge = connections.gauge_for(settings.max_connections)
    metrics_app = None
    if service.metrics_registry is not None:
        from app.headers import SecurityHeaders, security_headers
        from app.metrics import ConnectionCollector, MetricsApp

        ConnectionCollector(gauge, service.metrics_registry)
        metrics_app = SecurityHeaders(
            MetricsApp(service.metrics_registry), security_headers(settings)
        )
    access_log = service.access_log
    return server.run(
        service.stack,
        settings,
        lifecycle=service.lifecycle,
        metrics_app=metrics_app,
        flush=access_log.flush if access_log is not None else None,
        gauge=gauge,
    )


if __name__ == "__main__":
    sys.exit(main())
