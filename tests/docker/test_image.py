"""The built image, run as the issue says it must run: hardened, shell-less, reproducible."""

from __future__ import annotations

import io
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
from builder import elf, strip
from docker import DockerClient

from scripts.build import image
from scripts.build.image import Provenance
from scripts.core import engine
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings
from tests.docker.conftest import BuildVariant, free_port, wait_http

HARDENED = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "user": "1000:1000",
}


@pytest.fixture
def running(docker_engine: DockerClient, built: ImageRecord) -> Iterator[tuple[str, int]]:
    port = free_port()
    container = docker_engine.containers.run(
        built.tag, detach=True, ports={"8080/tcp": ("127.0.0.1", port)}, **HARDENED
    )
    yield str(container.id), port
    container.remove(force=True)


def filesystem(docker_engine: DockerClient, tag: str) -> tarfile.TarFile:
    container = docker_engine.containers.create(tag)
    try:
        data = b"".join(container.export())
    finally:
        container.remove(force=True)
    return tarfile.open(fileobj=io.BytesIO(data))


def test_serves_hello_world_read_only_without_capabilities(
    docker_engine: DockerClient, running: tuple[str, int]
) -> None:
    container_id, port = running
    root = wait_http(f"http://127.0.0.1:{port}/")
    assert root.status_code == 200
    assert root.text == "Hello World"
    assert "server" not in root.headers
    assert wait_http(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    logs = docker_engine.containers.get(container_id).logs().decode()
    assert '"loop":"uvloop"' in logs  # the default image runs on uvloop (docs/adr/0014)


def test_every_elf_file_is_stripped_and_openssl_is_left_out(
    docker_engine: DockerClient, built: ImageRecord, tmp_path: Path
) -> None:
    with filesystem(docker_engine, built.tag) as archive:
        archive.extractall(tmp_path, filter="tar")
    elves = [path for path in sorted(tmp_path.rglob("*")) if elf.is_elf(path)]
    assert [path.name for path in elves if path.parent.name == "uvloop"]
    unstripped = [
        str(path.relative_to(tmp_path))
        for path in elves
        if strip.strip_bytes(data := path.read_bytes()) is not data
    ]
    assert unstripped == []
    openssl = [
        path.name
        for path in tmp_path.rglob("*")
        if path.name.startswith(("libssl.", "libcrypto.", "_ssl.", "_hashlib."))
    ]
    assert openssl == []


def test_tls_in_the_image_fails_loudly_naming_the_fix(
    docker_engine: DockerClient, built: ImageRecord
) -> None:
    code = (
        "import socket, urllib.request\n"
        "listener = socket.create_server(('127.0.0.1', 0))\n"
        "urllib.request.urlopen(f'https://127.0.0.1:{listener.getsockname()[1]}/', timeout=5)\n"
    )
    with pytest.raises(docker.errors.ContainerError) as caught:
        docker_engine.containers.run(
            built.tag,
            entrypoint=["/usr/bin/python3", "-c", code],
            network_mode="none",
            remove=True,
            **HARDENED,
        )
    stderr = bytes(caught.value.stderr or b"").decode()
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("ssl.TLSUnavailable: SSLContext.wrap_socket: TLS is not available")
    assert 'openssl = "keep"' in last


def test_config_runs_as_uid_1000_with_exec_form_entrypoint_and_labels(
    docker_engine: DockerClient, built: ImageRecord, provenance: Provenance
) -> None:
    config = docker_engine.images.get(built.id).attrs["Config"]
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["/usr/bin/python3", "-m", "app"]
    assert config["Healthcheck"]["Test"][:4] == ["CMD", "/usr/bin/python3", "-m", "app.healthcheck"]
    assert "8080/tcp" in config["ExposedPorts"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == provenance.revision
    assert labels["org.opencontainers.image.created"] == provenance.created
    assert labels["org.opencontainers.image.source"].startswith("https://")


def test_has_no_shell(docker_engine: DockerClient, built: ImageRecord) -> None:
    with pytest.raises(docker.errors.APIError, match=r"executable file not found|no such file"):
        docker_engine.containers.run(built.tag, entrypoint=["sh", "-c", "true"], remove=True)


def test_holds_no_setuid_file_no_shell_and_no_package_manager(
    docker_engine: DockerClient, built: ImageRecord
) -> None:
    with filesystem(docker_engine, built.tag) as archive:
        members = archive.getmembers()
    names = {member.name.lstrip("./") for member in members}
    special = [m.name for m in members if m.mode & (stat.S_ISUID | stat.S_ISGID)]
    assert special == []
    for forbidden in ("bin/sh", "usr/bin/sh", "usr/bin/bash", "usr/bin/dpkg", "usr/bin/apt"):
        assert forbidden not in names
    assert "usr/bin/python3.13" in names
    assert "tmp" in names


def test_health_check_turns_healthy_and_stop_exits_0_within_2_s(
    docker_engine: DockerClient, running: tuple[str, int]
) -> None:
    container_id, _ = running
    assert engine.wait_healthy(docker_engine, container_id, 60) == "healthy"
    container = docker_engine.containers.get(container_id)
    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    assert elapsed < 2.0


def test_two_clean_builds_give_the_same_layers_and_image_id(
    build_variant: BuildVariant, built: ImageRecord
) -> None:
    again = build_variant(platform=built.platform, no_cache=True)
    assert again.layers == built.layers
    assert again.id == built.id


@pytest.fixture(scope="module")
def arm64(build_variant: BuildVariant) -> ImageRecord:
    return build_variant(platform="linux/arm64")


def test_arm64_image_holds_only_aarch64_binaries(
    docker_engine: DockerClient, arm64: ImageRecord, tmp_path: Path
) -> None:
    with filesystem(docker_engine, arm64.tag) as archive:
        archive.extractall(tmp_path, filter="tar")
    machines = {
        str(path.relative_to(tmp_path)): elf.read_elf(path).machine
        for path in tmp_path.rglob("*")
        if elf.is_elf(path)
    }
    assert "usr/bin/python3.13" in machines
    assert set(machines.values()) == {"arm64"}, machines
    assert docker_engine.images.get(arm64.id).attrs["Architecture"] == "arm64"


def test_arm64_image_serves_under_emulation(
    settings: Settings, docker_engine: DockerClient, arm64: ImageRecord
) -> None:
    if not image.binfmt_ready("arm64"):
        message = "binfmt has no qemu-aarch64 entry: .ci/setup registers it"
        if settings.ci:
            pytest.fail(message)
        pytest.skip(message)
    image.serves_root(docker_engine, arm64, image.FOREIGN_TIMEOUT)


def test_the_extras_image_runs_the_access_check(
    docker_engine: DockerClient, build_variant: BuildVariant
) -> None:
    extras = build_variant(extras=True, name="zeroport-extras")
    port = free_port()
    container = docker_engine.containers.run(
        extras.tag,
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", port)},
        environment={
            "APP_ACCESS_TEAM": "https://team.cloudflareaccess.com",
            "APP_ACCESS_AUD": "ab" * 32,
        },
        **HARDENED,
    )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert wait_http(f"http://127.0.0.1:{port}/").status_code == 403
        # PyJWT fetches the keys over https: this image keeps OpenSSL, and CAs to verify with
        probe = (
            "import ssl; print(ssl.OPENSSL_VERSION); "
            "print(ssl.create_default_context().cert_store_stats()['x509_ca'])"
        )
        output = docker_engine.containers.run(
            extras.tag,
            entrypoint=["/usr/bin/python3", "-c", probe],
            remove=True,
            **HARDENED,
        )
        version, authorities = bytes(output).decode().split("\n")[:2]
        assert version.startswith("OpenSSL 3.")
        assert int(authorities) > 100  # Mozilla's roots, as Debian's ca-certificates has them
    finally:
        container.remove(force=True)
        docker_engine.images.remove(extras.tag, force=True)


def test_the_asyncio_image_serves_without_uvloop(
    docker_engine: DockerClient, build_variant: BuildVariant, tmp_path: Path
) -> None:
    plain = build_variant(loop=image.Loop.ASYNCIO, name="zeroport-asyncio")
    port = free_port()
    container = docker_engine.containers.run(
        plain.tag, detach=True, ports={"8080/tcp": ("127.0.0.1", port)}, **HARDENED
    )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/").text == "Hello World"
        assert '"loop":"asyncio"' in container.logs().decode()
        with filesystem(docker_engine, plain.tag) as archive:
            names = archive.getnames()
        assert not [name for name in names if "uvloop" in name]
    finally:
        container.remove(force=True)
        docker_engine.images.remove(plain.tag, force=True)
