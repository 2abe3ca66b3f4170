"""Building the service's image, reproducibly, for one or more platforms.

The build runs ``containers/Dockerfile`` with BuildKit (see :mod:`scripts.core.engine` for which
CLI) against the base recorded by ``doit base_image``, with SOURCE_DATE_EPOCH set to the last
commit's time. The builder fixes every mtime and sorts every archive, so two builds of the same
commit give the same layer digests.

The engine's BuildKit (Docker 20.10) still stamps the wall-clock build time into the image
config (``created`` and each ``history`` entry), so the same layers get a new image ID each
time. :func:`restamp` rewrites those times to SOURCE_DATE_EPOCH and reloads the image: the ID,
being the digest of the config, is then the same for the same commit (docs/adr/0010). A
BuildKit that honours SOURCE_DATE_EPOCH itself (>= 0.11) already writes those values, and the
restamp changes nothing.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import logging
import re
import socket
import tarfile
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker.errors
import httpx
from docker import DockerClient

from scripts.core import engine, paths, proc
from scripts.core.errors import (
    BuildError,
    ParamError,
    ToolError,
    ToolFailed,
    Unhealthy,
    WorkflowError,
)
from scripts.core.options import choice_var, flag_var
from scripts.core.records import BaseRecord, ImageRecord, read_platform_records, write_record
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

SUPPORTED_PLATFORMS = ("linux/amd64", "linux/arm64")
#: Seconds a foreign-arch image gets to turn healthy under qemu (Python starts ~50x slower).
FOREIGN_TIMEOUT = 180.0
SOURCE = "https://github.com/zeroport/zeroport"
#: How the builder marks its own error lines (containers/builder/__main__.py), and BuildKit's
#: prefix on each line of a step's output ("#12 3.456 ").
BUILDER_ERROR = re.compile(r"^(?:#\d+ [\d.]+ )?(builder: error: .*)$")


class Loop(enum.StrEnum):
    """The event loop an image carries: uvloop (the default) or asyncio alone."""

    UVLOOP = "uvloop"
    ASYNCIO = "asyncio"


def requirements_for(*, extras: bool, loop: Loop) -> Path:
    """The requirements file (containers/) an image with these options installs."""
    if extras and loop is Loop.ASYNCIO:
        raise ParamError(
            "loop",
            loop.value,
            "uvloop with extras=1 (the extras image carries uvloop; for an asyncio-only image "
            "leave extras out)",
        )
    if extras:
        return paths.REQUIREMENTS_EXTRAS
    return paths.REQUIREMENTS_ASYNCIO if loop is Loop.ASYNCIO else paths.REQUIREMENTS


def builder_errors(output: str) -> list[str]:
    """The builder's own error lines in a failed build's output, without BuildKit's prefix."""
    lines = []
    for line in output.splitlines():
        match = BUILDER_ERROR.match(line.strip())
        if match and match.group(1) not in lines:
            lines.append(match.group(1))
    return lines


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """What the image is built from: version, commit and its time."""

    version: str
    revision: str
    epoch: int

    @property
    def created(self) -> str:
        """The commit time as RFC 3339, the image's ``created``."""
        return datetime.fromtimestamp(self.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @classmethod
    def of_checkout(cls, settings: Settings, root: Path = paths.ROOT) -> Provenance:
        """Version from pyproject.toml; revision and SOURCE_DATE_EPOCH from git."""
        version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
        env = settings.tool_env()
        try:
            revision = proc.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], env=env, timeout=30
            ).stdout.strip()
            epoch = int(
                proc.run(
                    ["git", "-C", str(root), "log", "-1", "--format=%ct"], env=env, timeout=30
                ).stdout.strip()
            )
            dirty = proc.run(
                [
                    "git",
                    "-C",
                    str(root),
                    "status",
                    "--porcelain",
                    "--",
                    "app",
                    "containers",
                    "pyproject.toml",
                ],
                env=env,
                timeout=30,
            ).stdout.strip()
        except (ToolError, ValueError) as exc:
            raise BuildError(
                f"cannot read the commit to build from ({exc}); build from a git checkout"
            ) from None
        return cls(version=version, revision=revision + ("-dirty" if dirty else ""), epoch=epoch)


def parse_platforms(value: str) -> tuple[str, ...]:
    """Validate a comma-separated ``platforms`` param."""
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [platform for platform in chosen if platform not in SUPPORTED_PLATFORMS]
    if not chosen or unknown:
        raise ParamError(
            "platforms", value, "a comma-separated list of " + ", ".join(SUPPORTED_PLATFORMS)
        )
    return chosen


def build(
    settings: Settings,
    docker_engine: DockerClient,
    *,
    platform: str,
    base_ref: str,
    provenance: Provenance,
    name: str | None = None,
    no_cache: bool = False,
    root: Path = paths.ROOT,
    extras: bool = False,
    loop: Loop = Loop.UVLOOP,
) -> ImageRecord:
    """Build, restamp and tag the runtime for ``platform``; the record of the result.

    ``no_cache`` rebuilds every stage from scratch (the reproducibility check uses it);
    ``root`` is the checkout to build from (the rebuild benchmark uses a scratch clone);
    ``extras`` installs every optional extra (the Access JWT check too); ``loop`` asyncio
    leaves uvloop out. A failed build raises :class:`BuildError` that leads with the
    builder's own error lines.
    """
    requirements = requirements_for(extras=extras, loop=loop)
    cli = engine.build_cli(settings)
    name = name or settings.image_name
    scratch_tag = f"{name}:build-{platform.rsplit('/', 1)[-1]}"
    argv = [
        *cli.argv,
        "--file",
        str(root / paths.DOCKERFILE.relative_to(paths.ROOT)),
        "--target",
        "runtime",
        "--platform",
        platform,
        "--build-arg",
        f"BASE_IMAGE={base_ref}",
        "--build-arg",
        f"SOURCE_DATE_EPOCH={provenance.epoch}",
        "--build-arg",
        f"VERSION={provenance.version}",
        "--build-arg",
        f"REVISION={provenance.revision}",
        "--build-arg",
        f"CREATED={provenance.created}",
        "--build-arg",
        f"SOURCE={SOURCE}",
        "--tag",
        scratch_tag,
    ]
    if settings.ca_bundle:
        argv += ["--secret", f"id=ca_bundle,src={settings.ca_bundle}"]
    if no_cache:
        argv.append("--no-cache")
    if requirements != paths.REQUIREMENTS:
        argv += ["--build-arg", f"REQUIREMENTS={requirements.name}"]
    argv.append(str(root))
    logger.info("building %s for %s with %s", name, platform, " ".join(cli.argv[:3]))
    started = time.monotonic()
    try:
        proc.run(
            argv,
            env=settings.tool_env(**cli.env, SOURCE_DATE_EPOCH=str(provenance.epoch)),
            timeout=settings.build_timeout,
        )
    except ToolFailed as exc:
        builder_lines = builder_errors(exc.output)
        if builder_lines:
            for line in builder_lines:
                logger.error("%s", line)
            raise BuildError(
                f"the image build failed in the builder: {builder_lines[0]} "
                f"({len(builder_lines)} builder error line(s) above; {exc.argv[0]} exited "
                f"{exc.returncode})"
            ) from None
        raise BuildError(f"the image build failed: {exc}") from None
    except ToolError as exc:
        raise BuildError(f"the image build failed: {exc}") from None
    image_id = restamp(docker_engine, scratch_tag, provenance.epoch)
    tag = f"{name}:{image_id.removeprefix('sha256:')[:12]}"
    image = docker_engine.images.get(image_id)
    image.tag(tag)
    docker_engine.images.remove(scratch_tag, noprune=True)
    logger.info("built %s in %.1f s", tag, time.monotonic() - started)
    return ImageRecord(
        tag=tag,
        id=image_id,
        platform=platform,
        size=int(image.attrs["Size"]),
        layers=tuple(image.attrs["RootFS"]["Layers"]),
        base=base_ref,
        version=provenance.version,
        revision=provenance.revision,
        created=provenance.created,
    )


def restamp(docker_engine: DockerClient, tag: str, epoch: int) -> str:
    """Rewrite the build times in ``tag``'s config to ``epoch`` and reload it; the new image ID."""
    image = docker_engine.images.get(tag)
    archive = b"".join(image.save(named=True))
    rewritten, image_id = rewrite_config_times(archive, epoch, tag)
    if image_id == image.id:
        return image_id
    docker_engine.images.load(rewritten)
    return image_id


def rewrite_config_times(archive: bytes, epoch: int, tag: str) -> tuple[bytes, str]:
    """The ``docker save`` archive with its config's times set to ``epoch``, and the new ID."""
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    members: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as source:
        for member in source.getmembers():
            handle = source.extractfile(member) if member.isfile() else None
            members[member.name] = (member, handle.read() if handle else b"")
    manifest = json.loads(members["manifest.json"][1])
    if len(manifest) != 1:
        raise BuildError(f"expected one image in the saved archive, found {len(manifest)}")
    config = json.loads(members[manifest[0]["Config"]][1])
    config["created"] = stamp
    for entry in config.get("history", []):
        entry["created"] = stamp
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(config_bytes).hexdigest()
    old_config = manifest[0]["Config"]
    manifest[0]["Config"] = f"{digest}.json"
    manifest[0]["RepoTags"] = [tag]
    del members[old_config]
    # Docker >= 25 also writes an OCI layout (index.json) naming the old config; drop it so the
    # archive loads through manifest.json alone.
    for name in ("repositories", "index.json", "oci-layout"):
        members.pop(name, None)
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w", format=tarfile.PAX_FORMAT) as target:
        for name, (member, data) in sorted(members.items()):
            if name == "manifest.json":
                continue
            target.addfile(member, io.BytesIO(data) if member.isfile() else None)
        for name, data in (
            (f"{digest}.json", config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = epoch
            target.addfile(info, io.BytesIO(data))
    return output.getvalue(), f"sha256:{digest}"


def binfmt_ready(arch: str, binfmt_dir: Path = Path("/proc/sys/fs/binfmt_misc")) -> bool:
    """Linux only: True when the kernel runs ``arch`` binaries through qemu-user-static."""
    names = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}
    entry = binfmt_dir / names.get(arch, f"qemu-{arch}")
    try:
        return entry.read_text().startswith("enabled")
    except OSError:
        return False


def step(platforms: str = "", extras: str = "0", loop: str = "uvloop") -> None:
    """doit image: build every requested platform (default: this host's) and record them.

    ``extras=1`` installs every optional extra (the Access JWT check too); ``loop=asyncio``
    builds the image without uvloop.
    """
    with_extras = flag_var({"extras": extras}, "extras", default=False)
    chosen_loop = choice_var({"loop": loop}, "loop", Loop, Loop.UVLOOP)
    requirements_for(extras=with_extras, loop=chosen_loop)  # a bad combination fails first
    settings = Settings.from_env()
    host = f"linux/{settings.host_arch}"
    chosen = parse_platforms(platforms or host)
    chosen = tuple(sorted(chosen, key=lambda p: p != host))  # the host's image first
    docker_engine = engine.client(settings)
    base = BaseRecord.read()
    provenance = Provenance.of_checkout(settings)
    records = []
    for platform in chosen:
        record = build(
            settings,
            docker_engine,
            platform=platform,
            base_ref=base.ref,
            provenance=provenance,
            extras=with_extras,
            loop=chosen_loop,
        )
        arch = platform.rsplit("/", 1)[-1]
        if arch != settings.host_arch:
            smoke_foreign(settings, docker_engine, record)
        records.append(record)
    write_record(records)
    for record in records:
        logger.info(
            "image %s  %s  %.1f MB  %d layers",
            record.tag,
            record.platform,
            record.size / 1e6,
            len(record.layers),
        )


def smoke_foreign(settings: Settings, docker_engine: DockerClient, record: ImageRecord) -> None:
    """Run a foreign-arch image under qemu-user-static until healthy, where binfmt allows it."""
    arch = record.platform.rsplit("/", 1)[-1]
    if settings.system != "Linux" or not binfmt_ready(arch):
        logger.warning(
            "%s image not run: this host cannot execute %s binaries (Linux: apt-get install "
            "qemu-user-static binfmt-support, mount binfmt_misc, update-binfmts --enable "
            "qemu-aarch64; Docker Desktop runs them as is)",
            record.platform,
            arch,
        )
        return
    serves_root(docker_engine, record, FOREIGN_TIMEOUT)
    logger.info("%s image %s serves / under emulation", arch, record.tag)


def serves_root(docker_engine: DockerClient, record: ImageRecord, timeout: float) -> None:
    """Run the image on a loopback port until ``GET /`` answers 200; :class:`Unhealthy` if not.

    Used for foreign architectures: under emulation the interpreter starts so slowly that the
    image's own health check (3 s timeout) cannot pass, so this waits on the service itself.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    container = docker_engine.containers.run(
        record.tag,
        detach=True,
        platform=record.platform,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        user="1000:1000",
        ports={"8080/tcp": ("127.0.0.1", port)},
        labels={engine.CANDIDATE_LABEL: "1"},
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            container.reload()
            if container.status == "exited":
                break
            time.sleep(1)
        raise Unhealthy(f"{record.tag} ({record.platform}) did not serve / within {timeout:g} s")
    finally:
        container.remove(force=True)


def is_built() -> bool:
    """doit's up-to-date check: every recorded image is still in the engine."""
    try:
        settings = Settings.from_env()
        docker_engine = engine.client(settings)
        for record in read_platform_records():
            docker_engine.images.get(record.id)
    except (WorkflowError, docker.errors.ImageNotFound, FileNotFoundError, ValueError):
        return False
    return True
