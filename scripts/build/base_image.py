"""Making sure the builder's base image exists, with or without a registry.

In order: BASE_IMAGE if the engine has it, or else the base this recipe built here before;
else a pull of BASE_IMAGE, recorded pinned by digest; else (no registry answers, as on
air-gapped or proxied machines) a build from the Debian mirror with ``debootstrap
--variant=minbase`` and ``docker import``, following ``containers/base/recipe.toml``.
The result is recorded in ``build/base_image.json``, and the image build takes its ``ref``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from docker import DockerClient
from docker.models.images import Image

from scripts.core import engine, paths, proc
from scripts.core.errors import EngineError, ToolError, WorkflowError
from scripts.core.records import BaseRecord
from scripts.core.settings import MINUTES, Settings

logger = logging.getLogger(__name__)

RECIPE = paths.CONTAINERS / "base" / "recipe.toml"
PULL_TIMEOUT = 10 * MINUTES
DEBOOTSTRAP_TIMEOUT = 15 * MINUTES


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How to build the base from the Debian mirror (``containers/base/recipe.toml``)."""

    #: Debian release (``trixie``) and debootstrap variant (``minbase``).
    suite: str
    variant: str
    mirror: str
    #: A snapshot.debian.org timestamp that pins the packages, or "" for the mirror's current.
    snapshot: str
    #: Packages added beyond the variant's.
    include: tuple[str, ...]
    #: The local tag the imported base gets.
    tag: str
    #: Paths removed before import (docs, caches).
    remove: tuple[str, ...]

    @classmethod
    def load(cls, path: Path = RECIPE) -> Recipe:
        """Read the recipe file."""
        data = tomllib.loads(path.read_text())
        boot, image = data["debootstrap"], data["image"]
        return cls(
            suite=boot["suite"],
            variant=boot["variant"],
            mirror=boot["mirror"],
            snapshot=boot.get("snapshot", ""),
            include=tuple(boot.get("include", ())),
            tag=image["tag"],
            remove=tuple(image.get("remove", ())),
        )

    def source(self) -> str:
        """The mirror URL debootstrap reads: the snapshot of that day when one is pinned."""
        if self.snapshot:
            return f"https://snapshot.debian.org/archive/debian/{self.snapshot}/"
        return self.mirror

    def debootstrap_argv(self, target: Path) -> list[str]:
        """The debootstrap command line that builds the root filesystem into ``target``."""
        argv = ["debootstrap", f"--variant={self.variant}"]
        if self.include:
            argv.append("--include=" + ",".join(self.include))
        return [*argv, self.suite, str(target), self.source()]


def ensure(settings: Settings, engine: DockerClient, recipe: Recipe | None = None) -> BaseRecord:
    """Make sure the base exists locally: use it, pull it, or build it from the Debian mirror."""
    recipe = recipe or Recipe.load()
    wanted = settings.base_image
    for name in (wanted, recipe.tag):
        local = _local(engine, name)
        if local is not None:
            logger.info("base image %s is present", name)
            return BaseRecord(
                requested=wanted, ref=_pinned(local, name), id=str(local.id), source="local"
            )
    try:
        logger.info("pulling %s", wanted)
        pulled = engine.images.pull(wanted)
    except docker.errors.APIError as exc:
        logger.info("cannot pull %s (%s); building it from the Debian mirror", wanted, _short(exc))
    else:
        return BaseRecord(
            requested=wanted, ref=_pinned(pulled, wanted), id=str(pulled.id), source="pulled"
        )
    image_id = build_from_mirror(settings, engine, recipe)
    return BaseRecord(requested=wanted, ref=recipe.tag, id=image_id, source="debootstrap")


def build_from_mirror(settings: Settings, engine: DockerClient, recipe: Recipe) -> str:
    """Build the base with debootstrap and import it as ``recipe.tag``; its image id."""
    if settings.system != "Linux":
        raise EngineError(
            f"{settings.base_image} cannot be pulled and debootstrap runs only on Linux; "
            "make a registry reachable (docker pull works on Docker Desktop) or set "
            "ZEROPORT_BASE_IMAGE to an image you have"
        )
    env = settings.tool_env()
    proc.which("debootstrap", env)
    if settings.debian_mirror:
        recipe = dataclasses.replace(recipe, mirror=settings.debian_mirror)
    with tempfile.TemporaryDirectory(prefix="zeroport-base-", dir=_scratch_dir()) as scratch:
        rootfs = Path(scratch) / "rootfs"
        logger.info("debootstrap %s (%s) from %s", recipe.suite, recipe.variant, recipe.source())
        try:
            proc.run(recipe.debootstrap_argv(rootfs), env=env, timeout=DEBOOTSTRAP_TIMEOUT)
        except ToolError as exc:
            raise EngineError(
                f"debootstrap of {recipe.suite} failed: {exc} (it needs root and a reachable "
                f"mirror at {recipe.source()})"
            ) from None
        for relative in recipe.remove:
            shutil.rmtree(rootfs / relative, ignore_errors=True)
        archive = Path(scratch) / "rootfs.tar"
        proc.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."],
            env=env,
            timeout=5 * MINUTES,
        )
        repository, tag = recipe.tag.rsplit(":", 1)
        engine.api.import_image_from_file(
            str(archive), repository=repository, tag=tag, changes=['CMD ["bash"]']
        )
    image = engine.images.get(recipe.tag)
    logger.info("built %s (%s) from the Debian mirror", recipe.tag, image.short_id)
    return str(image.id)


def present(engine: DockerClient, record: BaseRecord) -> bool:
    """True while the recorded base image is still in the engine (doit's up-to-date check)."""
    return _local(engine, record.id) is not None


def _local(engine: DockerClient, name: str) -> Image | None:
    try:
        return engine.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise WorkflowError(f"cannot inspect {name}: {_short(exc)}") from None


def _pinned(image: Image, name: str) -> str:
    """``repository@sha256:...`` when the image came from a registry, else ``name`` as given."""
    repository = _repository(name)
    for repo_digest in image.attrs.get("RepoDigests") or []:
        digest_repo, digest = repo_digest.split("@", 1)
        if _canonical(digest_repo) == _canonical(repository):
            return f"{repository}@{digest}"
    return name


def _canonical(repository: str) -> str:
    """``debian`` for ``docker.io/library/debian``: Docker Hub's implicit parts removed."""
    return repository.removeprefix("docker.io/").removeprefix("library/")


def _repository(name: str) -> str:
    """``debian`` for ``debian:trixie-slim``; ``host:5000/x`` for ``host:5000/x:tag``."""
    base = name.split("@", 1)[0]
    if ":" in base.rsplit("/", 1)[-1]:
        base = base[: base.rfind(":")]
    return base


def _scratch_dir() -> str | None:
    # debootstrap needs a filesystem without nodev/noexec; the build dir is one we control.
    paths.BUILD.mkdir(parents=True, exist_ok=True)
    return str(paths.BUILD)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__


def step() -> None:
    """doit base_image: ensure the base and record it in build/base_image.json."""
    settings = Settings.from_env()
    docker_engine = engine.client(settings)
    record = ensure(settings, docker_engine)
    record.write()
    logger.info("base image: %s (%s, %s)", record.ref, record.source, record.id[:19])


def is_present() -> bool:
    """doit's up-to-date check: the recorded base is still in the engine."""
    try:
        settings = Settings.from_env()
        return present(engine.client(settings), BaseRecord.read())
    except WorkflowError:
        return False
