"""Canary: the real service, except that the process dies once more than 2,000 connections
are open at once. ``doit bench`` with its connection hold must fail it."""

from __future__ import annotations

import os
import sys

from app import server
from app.config import Settings
from app.connections import ConnectionGauge
from app.service import create_app

LIMIT = 2000


class Fragile(ConnectionGauge):
    def admit(self) -> bool:
        admitted = super().admit()
        if self.open > LIMIT:
            os._exit(3)
        return admitted


if __name__ == "__main__":
    settings = Settings.from_env()
    service = create_app(settings)
    gauge = Fragile(settings.max_connections)
    sys.exit(server.run(service.stack, settings, lifecycle=service.lifecycle, gauge=gauge))
