"""The README's main command end to end, on a fresh clone: doit deploy, then again, then down."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.core import paths, proc
from scripts.core.settings import Settings
from tests.docker.conftest import free_port

OFFLINE = ["allow_unaudited=pip-audit,trivy-db"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the committed checkout: what CI and a new user start from."""
    target = tmp_path_factory.mktemp("clone") / "zeroport"
    settings = Settings.from_env()
    proc.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(paths.ROOT), str(target)],
        env=settings.tool_env(),
        timeout=120,
    )
    return target


def doit(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


@pytest.fixture(scope="module")
def deployed(clone: Path) -> Iterator[list[str]]:
    variables = [f"port={free_port()}", f"project=zptdodo{clone.parent.name[-6:]}", *OFFLINE]
    first = doit(clone, "deploy", *variables)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    yield variables
    doit(clone, "down", *variables)


def test_deploy_builds_scans_starts_and_verifies(clone: Path, deployed: list[str]) -> None:
    assert (clone / "build" / "image.json").is_file()
    assert (clone / "build" / "scan" / "audit.json").is_file()
    assert '"passed": true' in (clone / "build" / "verify.json").read_text()


def test_a_second_deploy_with_nothing_changed_does_no_work(
    clone: Path, deployed: list[str]
) -> None:
    again = doit(clone, "deploy", *deployed)
    assert again.returncode == 0, again.stderr
    ran = [line for line in again.stdout.splitlines() if line.startswith(".  ")]
    assert ran == [], f"tasks ran again: {ran}"
    skipped = {line.split()[-1] for line in again.stdout.splitlines() if line.startswith("-- ")}
    assert {"image", "scan", "up", "verify"} <= skipped


def test_a_bad_option_stops_with_one_line_naming_it(clone: Path) -> None:
    result = doit(clone, "deploy", "mode=sideways", *OFFLINE)
    assert result.returncode != 0
    assert "mode must be one of local, tunnel, got 'sideways'" in result.stdout + result.stderr


def test_list_shows_the_milestones_in_order(clone: Path) -> None:
    listing = doit(clone, "list").stdout.split()
    order = [listing.index(task) for task in ("base_image", "image", "up", "verify", "deploy")]
    assert order == sorted(order)
