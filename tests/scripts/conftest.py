"""Fixtures shared by the pipeline's unit tests."""

from __future__ import annotations

import shutil

import pytest

from scripts.core.settings import Settings


@pytest.fixture
def real_trivy() -> dict[str, str]:
    """The environment that finds the real trivy; skip (fail under CI) without one."""
    settings = Settings.from_env()
    env = settings.tool_env()
    if shutil.which("trivy", path=env["PATH"]) is None:
        if settings.ci:
            pytest.fail("trivy is required under CI: uv sync --group audit")
        pytest.skip("trivy is not installed (uv sync --group audit, on Linux x86_64)")
    return env
