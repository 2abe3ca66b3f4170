"""Fixtures for the service's tests (the helpers themselves live in ``support``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

from tests.app.support import json_logs

__all__ = ["json_logs"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio for every test; uvloop too where a test asks for both (the image ships either)."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "uvloop" in marker.kwargs.get("loop_factories", ()):
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
