"""``doit rollback``: run the release before the current one again, and verify it."""

from __future__ import annotations

import logging

from scripts import engine, releases, stack, verify
from scripts.options import StackOptions
from scripts.settings import Settings

logger = logging.getLogger(__name__)


def step() -> None:
    """Redeploy the previous release with the running stack's options; verify; record it."""
    settings = Settings.from_env()
    current = stack.StackRecord.read()
    target = releases.previous()
    options = StackOptions.from_vars(
        {
            "project": current.project,
            "mode": current.mode,
            "target": current.target,
            "replicas": str(current.replicas),
            "port": str(current.port),
        }
    )
    logger.info(
        "rolling back from %s to release %d (%s)", current.image, target.number, target.image
    )
    record = stack.up(settings, engine.client(settings), options, target)
    verify.step()
    releases.record(
        image=record.image,
        image_id=record.image_id,
        revision=target.revision,
        mode=record.mode,
        target=record.target,
        rollback_to=target.number,
    )
    logger.info("release %d (%s) runs again", target.number, target.image)
