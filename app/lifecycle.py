"""Where the service is in its life: starting, ready, or stopping. ``/readyz`` reports it."""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    """The phases in the order they happen."""

    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"


class Lifecycle:
    """Readiness shared by the routes (which report it) and the server (which changes it)."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING

    @property
    def ready(self) -> bool:
        """True between start-up and the beginning of shutdown."""
        return self.phase is Phase.READY

    def started(self) -> None:
        """Start-up finished: the service takes traffic (unless shutdown already began)."""
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY

    def stopping(self) -> None:
        """Shutdown began: readiness turns 503 for good."""
        self.phase = Phase.STOPPING
