"""The image lets go of clients that hang up, and caps its connections (ADR 0013).

The clients talk to the container's bridge address (this Linux host reaches it), so that no
userland proxy stands between them and the service; what the service holds is read inside the
container by scripts.container_probe. Traffic goes only to containers these tests start.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
from docker import DockerClient
from docker.models.containers import Container

from scripts.core.records import ImageRecord
from scripts.security.churn import churn
from scripts.security.probe import Holdings, probe
from tests.docker.conftest import wait_http

#: How the compose file runs the app (containers/compose.yaml), init included.
HARDENED = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "user": "1000:1000",
    "init": True,
    "mem_limit": "384m",
}


@contextlib.contextmanager
def service(docker_engine: DockerClient, image: str, **env: str) -> Iterator[tuple[Container, str]]:
    container = docker_engine.containers.run(image, detach=True, environment=env, **HARDENED)
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        wait_http(f"http://{address}:8080/healthz")
        time.sleep(0.5)  # the time it takes to let the readiness request's connection go
        yield container, address
    finally:
        container.remove(force=True)


def settled(container: Container, seconds: float = 1.0) -> Holdings:
    """The service's holdings once ``seconds`` have passed."""
    time.sleep(seconds)
    return probe(container)


def test_clients_that_hang_up_leave_no_socket_descriptor_or_memory_behind(
    docker_engine: DockerClient, built: ImageRecord
) -> None:
    with service(docker_engine, built.tag) as (container, address):
        churn(address, 8080, address, clients=200)
        before = settled(container)

        flood = churn(address, 8080, address, clients=2000)
        after = settled(container)

    assert flood.answered == 2000
    assert after.close_wait == 0
    assert after.fds <= before.fds + 2
    assert after.rss - before.rss < 5 << 20


def test_connections_over_the_cap_are_closed_and_the_open_ones_served(
    docker_engine: DockerClient, built: ImageRecord
) -> None:
    request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    with service(docker_engine, built.tag, APP_MAX_CONNECTIONS="20") as (container, address):
        held = [socket.create_connection((address, 8080), timeout=5) for _ in range(20)]
        try:
            time.sleep(0.5)
            with socket.create_connection((address, 8080), timeout=5) as extra:
                extra.sendall(request)
                try:
                    refused = extra.recv(1024)
                except ConnectionResetError:
                    refused = b""
            for sock in held:
                sock.sendall(request)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in held:
                sock.close()
        logs = container.logs().decode()

    assert refused == b""
    assert '"message":"connections over APP_MAX_CONNECTIONS are closed at once"' in logs
    assert '"max_connections":20' in logs


@pytest.mark.parametrize("limit", ["0", "abc"])
def test_a_bad_connection_cap_stops_the_start_with_one_line(
    docker_engine: DockerClient, built: ImageRecord, limit: str
) -> None:
    output = docker_engine.containers.run(
        built.tag, environment={"APP_MAX_CONNECTIONS": limit}, remove=False, detach=True
    )
    try:
        code = output.wait(timeout=30)["StatusCode"]
        stderr = output.logs(stdout=False, stderr=True).decode().strip()
    finally:
        output.remove(force=True)

    assert code == 2
    assert stderr == f"APP_MAX_CONNECTIONS must be an integer 1-1000000, got '{limit}'"
