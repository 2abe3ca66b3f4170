"""Canary: the real service on Hypercorn's own TCP server, without app/connections.py's
override, so that a client that hangs up is kept for the whole keep-alive timeout (ADR 0013).
``doit security``'s churn case must fail it."""

from __future__ import annotations

import sys

from app import connections
from app.__main__ import main


def keep_hypercorns_own() -> None:
    """Leave hypercorn.asyncio.run.TCPServer as Hypercorn ships it."""


connections.install = keep_hypercorns_own  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main([]))
