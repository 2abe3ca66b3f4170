"""Every path the pipeline reads or writes, in one place."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APP = ROOT / "app"
TUNNEL = ROOT / "tunnel"
SCRIPTS = ROOT / "scripts"
CONTAINERS = ROOT / "containers"
TESTS = ROOT / "tests"

PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "uv.lock"
REQUIREMENTS = CONTAINERS / "requirements.txt"
REQUIREMENTS_ASYNCIO = CONTAINERS / "requirements-asyncio.txt"
REQUIREMENTS_EXTRAS = CONTAINERS / "requirements-extras.txt"
DOCKERFILE = CONTAINERS / "Dockerfile"
COMPOSE = CONTAINERS / "compose.yaml"

BUILD = ROOT / "build"
SCAN_DIR = BUILD / "scan"
BENCH_DIR = BUILD / "bench"
SECURITY_DIR = BUILD / "security"
RELEASES = BUILD / "releases.json"
IMAGE_RECORD = BUILD / "image.json"
BASE_RECORD = BUILD / "base_image.json"
SECRETS = ROOT / "secrets"


def app_sources() -> list[Path]:
    """The files whose change means a new image: the app package and the runtime lock."""
    return sorted(p for p in APP.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
