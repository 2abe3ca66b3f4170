"""Publishing the built platforms under one tag: per-arch images plus a manifest list.

Each platform's image is pushed as ``REGISTRY/NAME:VERSION-ARCH``; ``docker manifest`` then
joins them under ``REGISTRY/NAME:VERSION``, so ``docker pull`` on amd64 and on arm64 each get
their own. Works against any registry; Debian's ``docker-registry`` package gives a real one on
127.0.0.1:5000 (plain HTTP, which the engine allows for loopback and the manifest commands are
told with ``--insecure``).
"""

from __future__ import annotations

import json
import logging
import ssl

import docker.errors
import httpx
from docker import DockerClient

from scripts.core import engine, paths, proc
from scripts.core.errors import DeployError
from scripts.core.records import ImageRecord, read_platform_records
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

PUSH_RECORD = paths.BUILD / "push.json"
TIMEOUT = 300.0


def registry_reachable(registry: str, client: httpx.Client) -> bool:
    """True when ``registry`` answers the Docker Registry HTTP API (``GET /v2/``)."""
    for scheme in ("https", "http"):
        try:
            response = client.get(f"{scheme}://{registry}/v2/", timeout=5)
        except httpx.HTTPError:
            continue
        if response.status_code in {200, 401}:
            return True
    return False


def publish(
    settings: Settings, docker_engine: DockerClient, records: list[ImageRecord], registry: str
) -> dict[str, object]:
    """Push ``records`` (one per platform) and the manifest list joining them; what was pushed."""
    context = ssl.create_default_context(cafile=settings.ca_bundle)
    with httpx.Client(verify=context, trust_env=False) as client:
        if not registry_reachable(registry, client):
            raise DeployError(
                f"no registry answers at {registry}; start one (apt-get install docker-registry "
                "serves 127.0.0.1:5000) or pass registry=HOST:PORT"
            )
    name = settings.image_name
    version = records[0].version
    pushed = []
    for record in records:
        arch = record.platform.rsplit("/", 1)[-1]
        repository = f"{registry}/{name}"
        docker_engine.images.get(record.id).tag(repository, f"{version}-{arch}")
        try:
            # The engine reports a failed push inside the stream, not as an HTTP error.
            for line in docker_engine.images.push(
                repository, f"{version}-{arch}", stream=True, decode=True
            ):
                if "error" in line:
                    raise DeployError(f"pushing {repository}:{version}-{arch}: {line['error']}")
        except docker.errors.APIError as exc:
            raise DeployError(f"pushing {repository}:{version}-{arch} failed: {exc}") from None
        pushed.append(f"{repository}:{version}-{arch}")
    env = settings.tool_env()
    docker_cli = proc.which("docker", env)
    manifest = f"{registry}/{name}:{version}"
    proc.run(
        [docker_cli, "manifest", "create", "--insecure", "--amend", manifest, *pushed],
        env=env,
        timeout=TIMEOUT,
    )
    digest = proc.run(
        [docker_cli, "manifest", "push", "--insecure", "--purge", manifest],
        env=env,
        timeout=TIMEOUT,
    ).stdout.strip()
    logger.info("pushed %s (%s) -> %s", manifest, ", ".join(pushed), digest)
    return {"manifest": manifest, "digest": digest, "images": pushed}


def step(registry: str) -> None:
    """doit push: push every recorded platform and the manifest list that joins them."""
    settings = Settings.from_env()
    result = publish(settings, engine.client(settings), read_platform_records(), registry)
    PUSH_RECORD.write_text(json.dumps(result, indent=2) + "\n")
