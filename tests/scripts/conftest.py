"""Fixtures shared by the pipeline's unit tests."""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

import pytest

from scripts.core.records import StackRecord
from scripts.core.settings import Settings


def stack_record(**changes: Any) -> StackRecord:
    """A record of a stack deployed in tunnel mode on compose; ``changes`` override fields."""
    record = StackRecord(
        project="zp",
        mode="tunnel",
        target="compose",
        image="zeroport:abc",
        image_id="sha256:abc",
        replicas=1,
        port=8080,
        url=None,
        network="zp_origin",
        started="2026-11-29T00:00:00Z",
    )
    return replace(record, **changes)


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
