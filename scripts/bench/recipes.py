"""The benchmark's own images, built from a recipe on the local Debian base.

The load generator (``containers/loadgen/``) and stock Quart (``containers/stock/`` with the
service's locked requirements) are never shipped: each is built once, on the base ``doit
base_image`` recorded, and tagged by the hash of that base and of every file of its recipe, so
a changed recipe builds anew and an unchanged one is found, not rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import docker.errors
from docker import DockerClient

from scripts.core import engine, proc
from scripts.core.errors import BuildError, ToolError
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)


def tag(name: str, base_ref: str, files: Sequence[Path]) -> str:
    """``name:<hash>`` of the base and of ``files`` (their names and contents)."""
    digest = hashlib.sha256(base_ref.encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{name}:{digest.hexdigest()[:12]}"


def ensure(
    settings: Settings,
    docker_engine: DockerClient,
    *,
    name: str,
    base_ref: str,
    files: Sequence[Path],
    what: str,
) -> str:
    """Build ``files`` (a Dockerfile and what it copies, side by side in the build context) on
    ``base_ref`` unless an image of the same recipe is there; its tag. :class:`BuildError`
    names ``what`` did not build."""
    image = tag(name, base_ref, files)
    try:
        docker_engine.images.get(image)
        return image
    except docker.errors.ImageNotFound:
        pass
    cli = engine.build_cli(settings)
    with tempfile.TemporaryDirectory(prefix="zeroport-recipe-") as scratch:
        context = Path(scratch)
        for path in files:
            shutil.copyfile(path, context / path.name)
        argv = [*cli.argv, "--build-arg", f"BASE_IMAGE={base_ref}", "--tag", image]
        if settings.ca_bundle:
            argv += ["--secret", f"id=ca_bundle,src={settings.ca_bundle}"]
        logger.info("building %s: %s", image, what)
        try:
            proc.run(
                [*argv, str(context)],
                env=settings.tool_env(**cli.env),
                timeout=settings.build_timeout,
            )
        except ToolError as exc:
            raise BuildError(f"{what} did not build: {exc}") from None
    return image
