"""Fixtures for the service's tests (the helpers themselves live in ``support``)."""

from __future__ import annotations

from tests.app.support import json_logs

__all__ = ["json_logs"]
