"""Publishing both platforms under one tag to a real registry on loopback."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker import DockerClient

from scripts.build import image, push
from scripts.core import proc
from scripts.core.records import BaseRecord, ImageRecord
from scripts.core.settings import Settings
from tests.docker.conftest import free_port

REGISTRY_CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry (the CNCF distribution registry) on a loopback port."""
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(REGISTRY_CONFIG.format(root=tmp_path / "data", port=port))
    process = proc.start(
        ["docker-registry", "serve", str(config)], env=settings.tool_env(), stderr=subprocess.PIPE
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(trust_env=False) as client:
            while not push.registry_reachable(address, client):
                assert process.poll() is None, "docker-registry exited"
                assert time.monotonic() < deadline, "docker-registry did not start"
                time.sleep(0.2)
        yield address
    finally:
        proc.stop(process)


def test_both_platforms_are_published_under_one_tag(
    settings: Settings,
    docker_engine: DockerClient,
    base: BaseRecord,
    provenance: image.Provenance,
    built: ImageRecord,
    registry: str,
) -> None:
    arm64 = image.build(
        settings, docker_engine, platform="linux/arm64", base_ref=base.ref, provenance=provenance
    )
    pushed = push.publish(settings, docker_engine, [built, arm64], registry)
    manifest = proc.run(
        ["docker", "manifest", "inspect", "--insecure", str(pushed["manifest"])],
        env=settings.tool_env(),
        timeout=60,
    )
    platforms = {
        (m["platform"]["os"], m["platform"]["architecture"])
        for m in json.loads(manifest.stdout)["manifests"]
    }
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
