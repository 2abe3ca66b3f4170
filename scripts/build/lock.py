"""The lock: ``uv.lock`` from pyproject.toml, and the image's requirements exported from it.

The image installs ``containers/requirements.txt`` with ``--require-hashes``; it is exported
from ``uv.lock`` (every wheel's hash), so the image and the nox sessions install the same
versions. Three exports, one per kind of image:

    requirements.txt          the runtime dependencies and the ``speed`` extra (uvloop): the
                              default image, on uvloop (docs/adr/0014)
    requirements-asyncio.txt  the runtime dependencies alone: ``doit image loop=asyncio``
    requirements-extras.txt   every extra, ``access`` (the Cloudflare Access JWT check) too:
                              ``doit image extras=1``
"""

from __future__ import annotations

import logging
from pathlib import Path

from scripts.core import paths, proc
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

EXPORT_ARGV = (
    "uv",
    "export",
    "--frozen",
    "--no-default-groups",
    "--no-emit-project",
    "--format",
    "requirements-txt",
    "--no-header",
    "--no-annotate",
)

#: Each requirements file the image build can install, and the extras it exports.
EXPORTS: dict[Path, tuple[str, ...]] = {
    paths.REQUIREMENTS: ("--extra", "speed"),
    paths.REQUIREMENTS_ASYNCIO: (),
    paths.REQUIREMENTS_EXTRAS: ("--all-extras",),
}


def exported(settings: Settings, target: Path, root: Path = paths.ROOT) -> str:
    """What ``uv export`` makes of ``root``'s uv.lock for the requirements file ``target``."""
    result = proc.run(
        [*EXPORT_ARGV, *EXPORTS[target], "--directory", str(root)],
        env=settings.tool_env(),
        timeout=120,
    )
    return result.stdout


def export(settings: Settings) -> None:
    """Refresh uv.lock (when pyproject changed) and export the image's requirements."""
    proc.run(["uv", "lock", "--directory", str(paths.ROOT)], env=settings.tool_env(), timeout=300)
    for target in EXPORTS:
        text = exported(settings, target)
        target.write_text(text)
        logger.info("%s: %d pinned requirements", target.name, text.count("=="))
