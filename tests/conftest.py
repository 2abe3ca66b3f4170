"""Shared test configuration: the ``docker`` marker and whether its tests may skip."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-docker",
        action="store_true",
        help="fail, rather than skip, tests marked docker when no Docker engine answers "
        "(nox -s tests and CI pass it)",
    )
