"""Scale-out on swarm: replicas, a rolling update that loses nothing, an automatic rollback.

This machine's kernel has no IPVS, so swarm's virtual IP cannot route here; the stack runs
with ``endpoint_mode=dnsrr`` (the service name resolves to every replica) and every request
comes from a client container on the stack's overlay network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from docker import DockerClient
from docker.models.containers import Container

from scripts.core.errors import Unhealthy
from scripts.core.options import DeployTarget, EndpointMode, StackOptions
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings
from scripts.deploy import stack

#: A bounded request loop: at most 600 requests or 45 s, a fresh connection each time.
LOOP = """
import http.client, json, time
ok = failed = 0
errors = []
deadline = time.monotonic() + 45
while ok + failed < 600 and time.monotonic() < deadline:
    try:
        conn = http.client.HTTPConnection("app", 8080, timeout=3)
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status == 200:
            ok += 1
        else:
            failed += 1
            errors.append(response.status)
    except OSError as exc:
        failed += 1
        errors.append(repr(exc))
    time.sleep(0.05)
print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5]}))
"""


@pytest.fixture
def swarm_options(project: str) -> StackOptions:
    return StackOptions(
        project=project,
        target=DeployTarget.SWARM,
        replicas=2,
        endpoint_mode=EndpointMode.DNSRR,
        health_timeout=120,
    )


@pytest.fixture
def client_loop() -> Iterator[list[Container]]:
    started: list[Container] = []
    yield started
    for container in started:
        container.remove(force=True)


def replicas(docker_engine: DockerClient, project: str) -> list[Container]:
    return docker_engine.containers.list(
        filters={"label": f"com.docker.swarm.service.name={project}_app", "health": "healthy"}
    )


def test_two_replicas_run_healthy_and_share_the_name(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    swarm_options: StackOptions,
    project: str,
) -> None:
    stack.up(settings, docker_engine, swarm_options, built)
    running = replicas(docker_engine, project)
    assert len(running) == 2
    for container in running:
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
        assert container.attrs["Config"]["User"] == "1000:1000"
    resolve = "import socket; print(len({a[4][0] for a in socket.getaddrinfo('app', 8080)}))"
    output = docker_engine.containers.run(
        built.tag,
        entrypoint=["/usr/bin/python3", "-c", resolve],
        network=f"{project}_local",
        remove=True,
    )
    assert output.strip() == b"2"


def test_rolling_update_under_load_loses_no_request(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    variant: ImageRecord,
    swarm_options: StackOptions,
    project: str,
    client_loop: list[Container],
) -> None:
    stack.up(settings, docker_engine, swarm_options, built)
    loop = docker_engine.containers.run(
        built.tag,
        entrypoint=["/usr/bin/python3", "-c", LOOP],
        network=f"{project}_local",
        detach=True,
    )
    client_loop.append(loop)
    stack.up(settings, docker_engine, swarm_options, variant)
    loop.wait(timeout=90)
    result = json.loads(loop.logs(stdout=True, stderr=False).decode().strip().splitlines()[-1])
    assert result["failed"] == 0, result
    assert result["ok"] > 50
    images = {c.attrs["Config"]["Image"].split("@")[0] for c in replicas(docker_engine, project)}
    assert images == {variant.tag}


def test_a_failing_new_image_rolls_back_on_its_own(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    broken: ImageRecord,
    swarm_options: StackOptions,
    project: str,
) -> None:
    stack.up(settings, docker_engine, swarm_options, built)
    with pytest.raises(Unhealthy):
        stack.deploy_swarm(settings, docker_engine, swarm_options, broken)
    service = docker_engine.services.get(f"{project}_app")
    assert (
        service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0] == built.tag
    )
    assert service.attrs["UpdateStatus"]["State"] == "rollback_completed"
