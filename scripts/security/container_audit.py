"""The container audit: the image and its running containers, in the spirit of CIS Docker 4-5.

Image (CIS 4): a non-root user, a health check, only the expected exposed ports, no shell and no
package manager in the filesystem, no setuid/setgid file, no secret in the env, labels,
entrypoint/cmd, build history or any layer's files (every layer is read, so a secret a later
layer deletes is still found).

Containers (CIS 5): non-root, read-only root filesystem, every capability dropped,
no-new-privileges, a passing health check, memory and pids limits, not privileged and no host
namespaces or engine socket, only the expected ports published (and only on the expected
addresses), no secret in the env.

The checks are pure functions of the engine's data (an image's config, a list of files, a
container's inspect document), so tests judge planted data without an engine; the readers at
the bottom fetch that data from Docker.
"""

from __future__ import annotations

import io
import logging
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any, cast

import docker.errors
from docker import DockerClient

from scripts.core.checks import Check, listing
from scripts.core.errors import AuditError
from scripts.scan import (
    secret_file_kind,
    secret_in_command,
    secret_kinds,
    secret_setting,
)

logger = logging.getLogger(__name__)

#: Program names that are a shell, wherever they sit in the filesystem.
SHELLS = frozenset(
    {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "rbash"}
    | {"busybox", "toybox"}
)
#: Program names that install software.
PACKAGE_MANAGERS = frozenset(
    {"apt", "apt-get", "apt-cache", "aptitude", "dpkg", "dpkg-deb", "rpm", "yum", "dnf"}
    | {"microdnf", "zypper", "apk", "pacman", "pip", "pip3", "easy_install", "conda"}
    | {"mamba", "uv", "poetry", "npm", "gem"}
)
#: Files larger than this are judged by name only (shared libraries, archives of wheels).
CONTENT_LIMIT = 1 << 20
#: Zip archives (a zipped stdlib or site-packages) up to this size are opened and read.
ZIP_LIMIT = 64 << 20
ROOT_USERS = frozenset({"", "0", "root"})


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """One path in an image's filesystem."""

    path: str
    mode: int = 0o644
    #: ``file``, ``dir``, ``symlink``, ``other``.
    kind: str = "file"
    #: Names inside it, for a zip archive (a zipped stdlib or site-packages).
    members: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The last path component."""
        return PurePosixPath(self.path).name


@dataclass(frozen=True, kw_only=True)
class SecretHit:
    """A secret found in one layer's file."""

    layer: str
    path: str
    kind: str


@dataclass(frozen=True, kw_only=True)
class ExpectedPorts:
    """What an app container may expose and publish: container port -> allowed host addresses."""

    exposed: frozenset[str] = frozenset({"8080/tcp"})
    #: ``{"8080/tcp": {"127.0.0.1"}}`` in local mode; empty when nothing may be published.
    published: Mapping[str, frozenset[str]] = field(default_factory=dict)


# ---- the image -------------------------------------------------------------------------------


def image_config_checks(
    config: Mapping[str, Any], history: Sequence[str], expected: ExpectedPorts
) -> list[Check]:
    """CIS 4 checks on an image's config (``image.attrs["Config"]``) and build history."""
    user = str(config.get("User") or "")
    health = (config.get("Healthcheck") or {}).get("Test") or []
    exposed = sorted((config.get("ExposedPorts") or {}).keys())
    unexpected = [port for port in exposed if port not in expected.exposed]
    return [
        Check(
            id="IMG-USER",
            title="image runs as a non-root user",
            ok=not _is_root(user),
            evidence=f"USER {user or '(unset: root)'}",
        ),
        Check(
            id="IMG-HEALTHCHECK",
            title="image declares a health check",
            ok=bool(health) and health[0] != "NONE",
            evidence=" ".join(map(str, health)) or "no HEALTHCHECK",
        ),
        Check(
            id="IMG-PORTS",
            title="image exposes only the expected ports",
            ok=not unexpected,
            evidence=f"exposes {listing(exposed)}; expected {listing(sorted(expected.exposed))}",
        ),
        Check(
            id="IMG-SECRETS-CONFIG",
            title="no secret in env, labels, entrypoint, cmd or build history",
            ok=not (found := config_secrets(config, history)),
            evidence=listing(found) if found else "none found",
        ),
    ]


def config_secrets(config: Mapping[str, Any], history: Sequence[str]) -> list[str]:
    """Why each place in an image's config or history holds a secret (values never repeated)."""
    found = [f"env: {reason}" for reason in env_secrets(config.get("Env") or [])]
    for name, value in (config.get("Labels") or {}).items():
        reason = secret_setting(str(name), str(value))
        if reason:
            found.append(f"label: {reason}")
    for key in ("Entrypoint", "Cmd"):
        command = " ".join(map(str, config.get(key) or []))
        reason = secret_in_command(command) if command else None
        if reason:
            found.append(f"{key.lower()}: {reason}")
    for index, step in enumerate(history):
        reason = secret_in_command(step)
        if reason:
            found.append(f"history[{index}]: {reason}")
    return found


def env_secrets(env: Iterable[str]) -> list[str]:
    """Why each ``NAME=value`` entry of an environment carries a secret."""
    found = []
    for entry in env:
        name, _, value = str(entry).partition("=")
        reason = secret_setting(name, value)
        if reason:
            found.append(reason)
    return found


def filesystem_checks(files: Iterable[FileEntry]) -> list[Check]:
    """CIS 4 checks on an image's merged filesystem: no shell, no package manager, no setuid."""
    shells: list[str] = []
    managers: list[str] = []
    setuid: list[str] = []
    for entry in files:
        if entry.kind in {"file", "symlink"} and entry.name in SHELLS:
            shells.append("/" + entry.path)
        if entry.kind in {"file", "symlink"} and _is_package_manager(entry.name):
            managers.append("/" + entry.path)
        managers += [f"/{entry.path}!{m}" for m in entry.members if _is_pip_member(m)]
        managers += _python_pip(entry)
        if entry.kind == "file" and entry.mode & (stat.S_ISUID | stat.S_ISGID):
            setuid.append(f"/{entry.path} ({stat.filemode(entry.mode | stat.S_IFREG)})")
    return [
        Check(
            id="IMG-NO-SHELL",
            title="no shell in the image",
            ok=not shells,
            evidence=listing(shells),
        ),
        Check(
            id="IMG-NO-PACKAGE-MANAGER",
            title="no package manager in the image",
            ok=not managers,
            evidence=listing(managers),
        ),
        Check(
            id="IMG-NO-SETUID",
            title="no setuid or setgid file",
            ok=not setuid,
            evidence=listing(setuid),
        ),
    ]


def layer_secrets_check(hits: Sequence[SecretHit], layers: int) -> Check:
    """CIS 4.10: no layer holds a secret (a file deleted by a later layer still counts)."""
    evidence = [f"layer {hit.layer[:12]}: /{hit.path} ({hit.kind})" for hit in hits]
    return Check(
        id="IMG-SECRETS-LAYERS",
        title="no secret in any layer's files",
        ok=not hits,
        evidence=listing(evidence) if hits else f"{layers} layers read, none found",
    )


def _is_root(user: str) -> bool:
    return user.split(":", 1)[0].strip() in ROOT_USERS


def _is_package_manager(name: str) -> bool:
    # pip3.13, pip-3.13: versioned pip launchers.
    return name in PACKAGE_MANAGERS or name.startswith(("pip3.", "pip-3"))


def _is_pip_member(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return (len(parts) >= 2 and parts[-2] == "pip" and parts[-1].startswith("__main__.py")) or (
        "ensurepip" in parts and "_bundled" in parts and member.endswith(".whl")
    )


def _python_pip(entry: FileEntry) -> list[str]:
    parts = PurePosixPath(entry.path).parts
    if entry.kind != "file" or len(parts) < 3:
        return []
    in_site = parts[-3] in {"site-packages", "dist-packages", "site"}
    is_pip = parts[-2] == "pip" and parts[-1].startswith("__main__.py")
    bundled = "ensurepip" in parts and "_bundled" in parts and entry.name.endswith(".whl")
    return ["/" + entry.path] if (in_site and is_pip) or bundled else []


# ---- the running containers ------------------------------------------------------------------


def container_checks(attrs: Mapping[str, Any], expected: ExpectedPorts) -> list[Check]:
    """CIS 5 checks on one container's inspect document; ids carry the container's name."""
    name = str(attrs.get("Name", "")).lstrip("/") or str(attrs.get("Id", ""))[:12]
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    state = attrs.get("State") or {}
    user = str(config.get("User") or "")
    cap_drop = [str(c).upper() for c in host.get("CapDrop") or []]
    cap_add = list(host.get("CapAdd") or [])
    security_opt = [str(o) for o in host.get("SecurityOpt") or []]
    health = (config.get("Healthcheck") or {}).get("Test") or []
    status = (state.get("Health") or {}).get("Status", "none")
    escapes = host_escapes(attrs)
    stray = stray_ports(attrs, expected)
    secrets = env_secrets(config.get("Env") or [])

    def check(suffix: str, title: str, ok: bool, evidence: str) -> Check:
        return Check(id=f"CTR-{suffix}[{name}]", title=title, ok=ok, evidence=evidence)

    return [
        check("USER", "runs as a non-root user", not _is_root(user), f"user {user or 'root'}"),
        check(
            "READ-ONLY",
            "root filesystem is read-only",
            bool(host.get("ReadonlyRootfs")),
            f"ReadonlyRootfs={bool(host.get('ReadonlyRootfs'))}",
        ),
        check(
            "CAP-DROP-ALL",
            "every capability dropped, none added",
            ("ALL" in cap_drop or "CAP_ALL" in cap_drop) and not cap_add,
            f"CapDrop={cap_drop or 'none'} CapAdd={cap_add or 'none'}",
        ),
        check(
            "NO-NEW-PRIVILEGES",
            "no-new-privileges is set",
            any(
                o.replace("=", ":") in {"no-new-privileges", "no-new-privileges:true"}
                for o in security_opt
            ),
            f"SecurityOpt={security_opt or 'none'}",
        ),
        check(
            "HEALTHY",
            "has a health check and it passes",
            bool(health) and health[0] != "NONE" and status == "healthy",
            f"{' '.join(map(str, health)) or 'no health check'} -> {status}",
        ),
        check(
            "MEMORY-LIMIT",
            "memory limit set",
            int(host.get("Memory") or 0) > 0,
            f"Memory={int(host.get('Memory') or 0)} bytes",
        ),
        check(
            "PIDS-LIMIT",
            "pids limit set",
            int(host.get("PidsLimit") or 0) > 0,
            f"PidsLimit={host.get('PidsLimit')}",
        ),
        check(
            "NO-HOST-ACCESS",
            "not privileged; no host namespace or engine socket",
            not escapes,
            listing(escapes),
        ),
        check(
            "PORTS",
            "publishes only the expected ports, only on the expected addresses",
            not stray,
            listing(stray) if stray else f"published: {listing(published_ports(attrs))}",
        ),
        check("SECRETS-ENV", "no secret in the environment", not secrets, listing(secrets)),
    ]


def host_escapes(attrs: Mapping[str, Any]) -> list[str]:
    """The ways a container reaches into its host: privileged, host namespaces, engine socket."""
    host = attrs.get("HostConfig") or {}
    found = []
    if host.get("Privileged"):
        found.append("privileged")
    for key in ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode"):
        if str(host.get(key) or "") == "host":
            found.append(f"{key}=host")
    for mount in attrs.get("Mounts") or []:
        if str(mount.get("Source", "")).endswith("docker.sock"):
            found.append(f"mounts {mount['Source']}")
    return found


def published_ports(attrs: Mapping[str, Any]) -> list[str]:
    """``127.0.0.1:8080->8080/tcp`` for every published port of a container."""
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    shown = []
    for port in sorted(set(ports) | set(bindings)):
        for binding in ports.get(port) or bindings.get(port) or []:
            # An empty HostIp means every interface.
            address = binding.get("HostIp") or "0.0.0.0"  # noqa: S104 - reported, not bound
            shown.append(f"{address}:{binding.get('HostPort')}->{port}")
    return shown


def stray_ports(attrs: Mapping[str, Any], expected: ExpectedPorts) -> list[str]:
    """Published ports that are not expected, or bound to an address that is not allowed."""
    stray = []
    for shown in published_ports(attrs):
        address, _, port = shown.partition("->")
        host_ip = address.rsplit(":", 1)[0]
        if host_ip not in expected.published.get(port, frozenset()):
            stray.append(shown)
    return stray


# ---- reading images and containers from the engine -------------------------------------------


class _ChunkReader(io.RawIOBase):
    """A file object over the byte chunks the SDK streams (``image.save()``, ``export()``)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


def _stream(chunks: Iterable[bytes]) -> IO[bytes]:
    return io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 20)


def _kind(member: tarfile.TarInfo) -> str:
    if member.isfile():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym() or member.islnk():
        return "symlink"
    return "other"


def _zip_names(data: bytes) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return tuple(archive.namelist())
    except (zipfile.BadZipFile, ValueError):
        return ()


def exported_files(docker_engine: DockerClient, image: str) -> list[FileEntry]:
    """The image's merged filesystem (what a container sees), from ``docker export``."""
    container = docker_engine.containers.create(image, entrypoint=["/nonexistent"])
    try:
        files = []
        # The SDK streams the archive in chunks (its type stubs say str).
        chunks = cast("Iterable[bytes]", container.export())
        with tarfile.open(fileobj=_stream(chunks), mode="r|") as archive:
            for member in archive:
                members: tuple[str, ...] = ()
                if member.isfile() and member.name.endswith(".zip") and member.size <= ZIP_LIMIT:
                    handle = archive.extractfile(member)
                    members = _zip_names(handle.read()) if handle else ()
                files.append(
                    FileEntry(
                        path=member.name.lstrip("./"),
                        mode=member.mode,
                        kind=_kind(member),
                        members=members,
                    )
                )
        return files
    finally:
        container.remove(force=True)


def layer_secret_hits(docker_engine: DockerClient, image: str) -> tuple[list[SecretHit], int]:
    """Secrets in any file of any layer of ``image`` (from ``docker save``); and the layer count."""
    hits: list[SecretHit] = []
    layers = 0
    saved = docker_engine.images.get(image).save()
    with tarfile.open(fileobj=_stream(saved), mode="r|") as outer:
        for member in outer:
            if not member.name.endswith("layer.tar"):
                continue
            layers += 1
            layer = member.name.split("/", 1)[0]
            handle = outer.extractfile(member)
            if handle is None:
                continue
            with tarfile.open(fileobj=handle, mode="r|") as inner:
                hits += _scan_layer(layer, inner)
    return hits, layers


def _scan_layer(layer: str, archive: tarfile.TarFile) -> list[SecretHit]:
    hits = []
    for member in archive:
        path = member.name.lstrip("./")
        by_name = secret_file_kind(path)
        if by_name and not PurePosixPath(path).name.startswith(".wh."):
            hits.append(SecretHit(layer=layer, path=path, kind=by_name))
        if not member.isfile():
            continue
        is_zip = path.endswith(".zip") and member.size <= ZIP_LIMIT
        if member.size > CONTENT_LIMIT and not is_zip:
            continue
        handle = archive.extractfile(member)
        data = handle.read() if handle else b""
        if is_zip:
            hits += _scan_zip(layer, path, data)
        else:
            hits += [SecretHit(layer=layer, path=path, kind=k) for k in secret_kinds(data)]
    return hits


def _scan_zip(layer: str, path: str, data: bytes) -> list[SecretHit]:
    hits = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.file_size > CONTENT_LIMIT:
                    continue
                kinds = secret_kinds(archive.read(info))
                hits += [
                    SecretHit(layer=layer, path=f"{path}!{info.filename}", kind=k) for k in kinds
                ]
    except (zipfile.BadZipFile, ValueError):
        return hits
    return hits


def audit_image(docker_engine: DockerClient, image: str, expected: ExpectedPorts) -> list[Check]:
    """Every image check on ``image`` (a tag or ID in the engine)."""
    try:
        found = docker_engine.images.get(image)
        attrs = found.attrs
        history = [str(step.get("CreatedBy", "")) for step in found.history()]
    except docker.errors.ImageNotFound:
        raise AuditError(f"image {image} is not in the engine; build it: doit image") from None
    checks = image_config_checks(attrs.get("Config") or {}, history, expected)
    checks += filesystem_checks(exported_files(docker_engine, image))
    hits, layers = layer_secret_hits(docker_engine, image)
    checks.append(layer_secrets_check(hits, layers))
    logger.info("image %s: %d checks, %d layers read", image, len(checks), layers)
    return checks


def audit_containers(
    docker_engine: DockerClient, label: str | list[str], expected: ExpectedPorts
) -> list[Check]:
    """CIS 5 checks on every running container carrying ``label`` (all of them, if a list)."""
    containers = docker_engine.containers.list(filters={"label": label})
    if not containers:
        return [
            Check(
                id="CTR-RUNNING",
                title="the stack's app containers run",
                ok=False,
                evidence=f"no running container has label {label}",
            )
        ]
    checks = []
    for container in containers:
        checks += container_checks(container.attrs, expected)
    return checks
