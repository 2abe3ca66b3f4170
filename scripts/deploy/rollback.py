"""``doit rollback``: run the release before the current one again, and verify it."""

from __future__ import annotations

import logging
from pathlib import Path

from docker import DockerClient

from scripts.core import engine, paths, records
from scripts.core.options import StackOptions
from scripts.core.settings import Settings
from scripts.deploy import releases, stack, verify

logger = logging.getLogger(__name__)


def rollback(
    settings: Settings,
    docker_engine: DockerClient,
    current: records.StackRecord,
    history: Path = paths.RELEASES,
) -> records.StackRecord:
    """Redeploy the release before ``current`` with its options; record it; the new stack."""
    target = releases.previous(history)
    options = StackOptions.from_vars(
        {
            "project": current.project,
            "mode": current.mode,
            "target": current.target,
            "replicas": str(current.replicas),
            "port": str(current.port),
        }
    )
    logger.info("rolling back from %s to release %d (%s)", current.image, target.number, target.tag)
    record = stack.up(settings, docker_engine, options, target)
    releases.record(record, revision=target.revision, rollback_to=target.number, path=history)
    return record


def step() -> None:
    """doit rollback: roll the recorded stack back one release, verify it, record it."""
    settings = Settings.from_env()
    record = rollback(settings, engine.client(settings), records.StackRecord.read())
    record.write()
    verify.step()
    logger.info("%s runs again", record.image)
