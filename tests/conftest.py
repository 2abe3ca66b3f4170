"""Shared test configuration: whether Docker tests and shared-fixture tests may skip."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-docker",
        action="store_true",
        help="fail, rather than skip, tests marked docker when no Docker engine answers "
        "(nox -s tests and CI pass it)",
    )
    parser.addoption(
        "--require-shared",
        action="store_true",
        help="fail, rather than skip, tests that read ../shared/fixtures when it is missing "
        "(.ci/run passes it: CI always has ../shared)",
    )
