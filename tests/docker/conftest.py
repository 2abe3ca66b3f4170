"""Fixtures for tests that need a Docker engine: the built image, variants of it, projects.

Every test here is marked ``docker``. Without an engine they skip, unless ``--require-docker``
is given (``nox -s tests`` and CI give it), where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import socket
import time
from collections.abc import Callable, Iterator

import docker.errors
import httpx
import pytest
from docker import DockerClient

from scripts.build import base_image, image
from scripts.build.image import Provenance
from scripts.core import engine, proc, records
from scripts.core.errors import EngineError
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/docker/" in item.nodeid:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest, settings: Settings) -> DockerClient:
    try:
        return engine.client(settings)
    except EngineError as exc:
        if request.config.getoption("--require-docker") or settings.ci:
            pytest.fail(f"Docker tests are required here: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def base(settings: Settings, docker_engine: DockerClient) -> records.BaseRecord:
    return base_image.ensure(settings, docker_engine)


@pytest.fixture(scope="session")
def provenance(settings: Settings) -> Provenance:
    return Provenance.of_checkout(settings)


#: Builds this checkout's image; keyword arguments of scripts.build.image.build change it.
BuildVariant = Callable[..., ImageRecord]


@pytest.fixture(scope="session")
def build_variant(
    settings: Settings,
    docker_engine: DockerClient,
    base: records.BaseRecord,
    provenance: Provenance,
) -> BuildVariant:
    """Build the checkout for this host (cached builds are quick); ``platform=``, ``extras=``,
    ``loop=``, ``no_cache=``, ``name=`` make a variant."""
    return functools.partial(
        image.build,
        settings,
        docker_engine,
        platform=f"linux/{settings.host_arch}",
        base_ref=base.ref,
        provenance=provenance,
    )


@pytest.fixture(scope="session")
def built(build_variant: BuildVariant) -> ImageRecord:
    """The project's image for this host, built from the checkout."""
    return build_variant()


def derive(docker_engine: DockerClient, parent: str, tag: str, extra: str) -> str:
    """A variant of ``parent`` (a Dockerfile line or two, no RUN): its image ID."""
    dockerfile = f"FROM {parent}\n{extra}\n".encode()
    built_image, _ = docker_engine.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return str(built_image.id)


@pytest.fixture(scope="session")
def variant(docker_engine: DockerClient, built: ImageRecord) -> Iterator[ImageRecord]:
    """A second, healthy release of the service: the same image with another label."""
    tag = "zeroport-test:v2"
    image_id = derive(docker_engine, built.tag, tag, 'LABEL io.zeroport.test.release="v2"')
    yield ImageRecord(**{**built.to_json(), "tag": tag, "id": image_id, "layers": built.layers})
    docker_engine.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def broken(docker_engine: DockerClient, built: ImageRecord) -> Iterator[ImageRecord]:
    """A release that starts but never passes its health check: it listens on an address the
    check does not probe (a broken HEALTHCHECK alone would not do: compose and swarm run the
    stack's own check, and the probe follows APP_PORT).
    """
    tag = "zeroport-test:broken"
    image_id = derive(docker_engine, built.tag, tag, "ENV APP_HOST=127.0.0.2")
    yield ImageRecord(**{**built.to_json(), "tag": tag, "id": image_id, "layers": built.layers})
    docker_engine.images.remove(tag, force=True)


@pytest.fixture
def project(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """A compose/stack project name of this test's own; whatever it ran is removed after."""
    name = "zpt" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    yield name
    env = settings.tool_env()
    proc.run(
        [*engine.compose_cli(settings), "--project-name", name, "down", "--volumes"],
        env=env,
        timeout=120,
        check=False,
    )
    proc.run(["docker", "stack", "rm", name], env=env, timeout=120, check=False)


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> httpx.Response:
    """GET ``url`` until it answers (or ``timeout``); the answer."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2.0)
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:g} s: {last}")


def remove(docker_engine: DockerClient, name: str) -> None:
    """Remove a container this test created, if it is there."""
    with contextlib.suppress(docker.errors.NotFound):
        docker_engine.containers.get(name).remove(force=True)
