"""The lock is in sync: the image's requirements are what ``uv export`` makes of ``uv.lock``."""

from __future__ import annotations

from scripts import lock, paths, tools
from scripts.settings import Settings


def test_the_committed_requirements_are_the_export_of_the_committed_lock() -> None:
    settings = Settings.from_env()
    result = tools.run(
        [*lock.EXPORT_ARGV, "--directory", str(paths.ROOT)],
        env=settings.tool_env(),
        timeout=120,
    )
    exported = result.stdout
    assert "--hash=sha256:" in exported
    assert paths.REQUIREMENTS.read_text() == exported, (
        "containers/requirements.txt is out of date with uv.lock; run: doit lock"
    )


def test_the_image_installs_only_the_runtime_dependencies() -> None:
    names = {
        line.split("==", 1)[0]
        for line in paths.REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    }
    assert {"quart", "hypercorn", "prometheus-client"} <= names
    assert not names & {"pytest", "doit", "docker", "ruff", "mypy", "cloudflare", "matplotlib"}
