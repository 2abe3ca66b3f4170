"""The records the stages hand each other under ``build/``: what was built, from which base,
and what is deployed. Each is written by its own task (``doit base_image``, ``image``, ``up``)
and read by the tasks that follow; they are the stages' shared vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from scripts.core import paths
from scripts.core.errors import ReportError

#: What ``up`` started; ``verify``, ``down`` and ``security`` read it.
STACK_RECORD = paths.BUILD / "stack.json"


T = TypeVar("T")


def write_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` as indented JSON, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(
    path: Path, parse: Callable[[Any], T], *, what: str, command: str, missing: str = ""
) -> T:
    """``parse`` of the JSON in ``path``, a file ``command`` writes. :class:`ReportError` when
    it is missing (``missing`` says what that means) or is not ``what``: run ``command``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path} is missing{missing}; run: {command}") from None
    try:
        return parse(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ReportError(f"{path} is not {what} ({exc}); run: {command}") from None


class Deployable(Protocol):
    """What a deploy needs to know of an image: its tag and its ID."""

    @property
    def tag(self) -> str:
        """A tag that names the image in the engine."""

    @property
    def id(self) -> str:
        """The image ID (``sha256:...``)."""


@dataclass(frozen=True, kw_only=True)
class ImageRecord:
    """One built image as ``build/image.json`` records it."""

    tag: str
    id: str
    platform: str
    size: int
    layers: tuple[str, ...]
    base: str
    version: str
    revision: str
    created: str

    def to_json(self) -> dict[str, object]:
        """The record as JSON-ready data."""
        return {**asdict(self), "layers": list(self.layers)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ImageRecord:
        """Read a record written by :meth:`to_json`."""
        try:
            return cls(**{**data, "layers": tuple(data["layers"])})  # type: ignore[arg-type]
        except (KeyError, TypeError) as exc:
            raise ReportError(f"not an image record: {exc}") from None


def write_record(records: list[ImageRecord], path: Path = paths.IMAGE_RECORD) -> None:
    """Write ``build/image.json``: the host-platform image first, then any others."""
    data = {"image": records[0].to_json(), "platforms": {r.platform: r.to_json() for r in records}}
    write_json(path, data)


def read_record(path: Path = paths.IMAGE_RECORD) -> ImageRecord:
    """The host-platform image recorded by the last ``doit image``."""
    return read_json(
        path, lambda data: ImageRecord.from_json(data["image"]), what=IMAGES, command="doit image"
    )


def read_platform_records(path: Path = paths.IMAGE_RECORD) -> list[ImageRecord]:
    """Every platform's image recorded by the last ``doit image``."""

    def parse(data: Any) -> list[ImageRecord]:
        return [ImageRecord.from_json(item) for item in data["platforms"].values()]

    return read_json(path, parse, what=IMAGES, command="doit image")


IMAGES = "a record of built images"


@dataclass(frozen=True, kw_only=True)
class BaseRecord:
    """Which base image the build uses, and where it came from."""

    #: What the build asked for (ZEROPORT_BASE_IMAGE or the Dockerfile's default).
    requested: str
    #: What the build uses: a digest-pinned reference, or the local tag.
    ref: str
    id: str
    source: str  # "local", "pulled" or "debootstrap"

    def write(self, path: Path = paths.BASE_RECORD) -> None:
        """Record this base for the image build (the doit target)."""
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path = paths.BASE_RECORD) -> BaseRecord:
        """The base recorded by the last ``doit base_image``."""
        return read_json(
            path, lambda data: cls(**data), what="a base-image record", command="doit base_image"
        )


@dataclass(frozen=True, kw_only=True)
class StackRecord:
    """What ``up`` started: the doit target that ``verify`` and ``down`` read."""

    #: The compose project or swarm stack name.
    project: str
    #: ``local`` (published on 127.0.0.1) or ``tunnel`` (no port published; cloudflared).
    mode: str
    #: ``compose`` or ``swarm``.
    target: str
    image: str
    image_id: str
    replicas: int
    port: int
    #: Where the service answers from this host; None in tunnel mode (nothing is published).
    url: str | None
    #: The network the app is reached on from inside (verify's in-network probe joins it).
    network: str
    #: When ``up`` finished (UTC, ISO 8601).
    started: str

    def write(self, path: Path = STACK_RECORD) -> None:
        """Record the running stack."""
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path = STACK_RECORD) -> StackRecord:
        """The stack the last ``up`` started."""
        return read_json(
            path,
            lambda data: cls(**data),
            what="a stack record",
            command="doit deploy",
            missing=": nothing is deployed",
        )
