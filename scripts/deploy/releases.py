"""The release history: which image each deploy ran, and going back to the one before.

``build/releases.json`` holds one entry per successful deploy, newest last. ``doit rollback``
redeploys the image of the entry before the newest (or, after a rollback, the one before the
release rolled back to) with the same stack options, verifies it, and records the rollback as
a release of its own, so the history reads as what ran when.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from scripts.core import paths
from scripts.core.errors import ReleaseError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Release:
    """One deploy: the image that ran and how."""

    number: int
    image: str
    image_id: str
    revision: str
    mode: str
    target: str
    deployed: str
    #: The release number this one rolled back to, for a rollback.
    rollback_to: int | None = None

    @property
    def tag(self) -> str:
        """The image's tag (what a redeploy runs)."""
        return self.image

    @property
    def id(self) -> str:
        """The image ID."""
        return self.image_id


def load(path: Path = paths.RELEASES) -> list[Release]:
    """Every recorded release, oldest first (none yet: an empty list)."""
    if not path.exists():
        return []
    try:
        return [Release(**item) for item in json.loads(path.read_text())]
    except (ValueError, TypeError) as exc:
        raise ReleaseError(
            f"{path} is not a release history ({exc}); fix or remove it (it only feeds rollback)"
        ) from None


class Deployed(Protocol):
    """What was just deployed, as a stack record (scripts.stack.StackRecord) says it."""

    @property
    def image(self) -> str:
        """The image's tag."""

    @property
    def image_id(self) -> str:
        """The image ID."""

    @property
    def mode(self) -> str:
        """local or tunnel."""

    @property
    def target(self) -> str:
        """compose or swarm."""


def record(
    deployed: Deployed,
    *,
    revision: str,
    rollback_to: int | None = None,
    path: Path = paths.RELEASES,
) -> Release:
    """Append the release that is now running (unless it is the newest one already)."""
    history = load(path)
    release = Release(
        number=history[-1].number + 1 if history else 1,
        image=deployed.image,
        image_id=deployed.image_id,
        revision=revision,
        mode=deployed.mode,
        target=deployed.target,
        deployed=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        rollback_to=rollback_to,
    )
    if history and history[-1].image_id == release.image_id and rollback_to is None:
        logger.info("release %d already runs %s", history[-1].number, release.image)
        return history[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in [*history, release]], indent=2) + "\n")
    return release


def previous(path: Path = paths.RELEASES) -> Release:
    """The release to roll back to: the one that ran before the current one."""
    history = load(path)
    if not history:
        raise ReleaseError("no release has been deployed yet; nothing to roll back to")
    by_number = {release.number: release for release in history}
    current = history[-1]
    # After a rollback, "the one before" is the one before the release it went back to.
    anchor = by_number.get(current.rollback_to, current) if current.rollback_to else current
    earlier = [r for r in history if r.number < anchor.number and r.image_id != current.image_id]
    if not earlier:
        raise ReleaseError(
            f"release {current.number} ({current.image}) is the first one; nothing to roll back to"
        )
    return earlier[-1]
