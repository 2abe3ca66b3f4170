"""The lock is in sync: the image's requirements are what ``uv export`` makes of ``uv.lock``."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.build import lock
from scripts.core import paths
from scripts.core.settings import Settings


def _names(path: Path) -> set[str]:
    return {
        line.split("==", 1)[0]
        for line in path.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    }


@pytest.mark.parametrize("target", list(lock.EXPORTS), ids=lambda path: path.name)
def test_the_committed_requirements_are_the_export_of_the_committed_lock(target: Path) -> None:
    exported = lock.exported(Settings.from_env(), target)
    assert "--hash=sha256:" in exported
    assert target.read_text() == exported, (
        f"containers/{target.name} is out of date with uv.lock; run: doit lock"
    )


def test_the_image_installs_only_the_runtime_dependencies() -> None:
    names = _names(paths.REQUIREMENTS)
    assert {"quart", "hypercorn", "prometheus-client"} <= names
    assert not names & {"pytest", "doit", "docker", "ruff", "mypy", "cloudflare", "matplotlib"}


def test_the_default_image_runs_on_uvloop_and_the_asyncio_one_does_not() -> None:
    assert "uvloop" in _names(paths.REQUIREMENTS)
    assert "pyjwt" not in _names(paths.REQUIREMENTS)
    assert _names(paths.REQUIREMENTS_ASYNCIO) == _names(paths.REQUIREMENTS) - {"uvloop"}
    assert {"uvloop", "pyjwt", "cryptography"} <= _names(paths.REQUIREMENTS_EXTRAS)
