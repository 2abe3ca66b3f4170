"""The lock: ``uv.lock`` from pyproject.toml, and the image's requirements exported from it.

The image installs ``containers/requirements.txt`` with ``--require-hashes``; it is exported
from ``uv.lock`` (runtime dependencies only, every wheel's hash), so the image and the nox
sessions install the same versions. ``requirements-extras.txt`` adds the optional extras
(``access``: the Cloudflare Access JWT check; ``speed``: uvloop) for ``doit image extras=1``.
"""

from __future__ import annotations

import logging

from scripts import paths, tools
from scripts.settings import Settings

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


def export(settings: Settings) -> None:
    """Refresh uv.lock (when pyproject changed) and export the image's requirements."""
    env = settings.tool_env()
    tools.run(["uv", "lock", "--directory", str(paths.ROOT)], env=env, timeout=300)
    for target, extra in ((paths.REQUIREMENTS, []), (paths.REQUIREMENTS_EXTRAS, ["--all-extras"])):
        result = tools.run(
            [*EXPORT_ARGV, *extra, "--directory", str(paths.ROOT)], env=env, timeout=120
        )
        target.write_text(result.stdout)
        logger.info("%s: %d pinned requirements", target.name, result.stdout.count("=="))
