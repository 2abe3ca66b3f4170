"""wrk inside a Docker network: for servers that only a container on their network can reach.

Swarm publishes through its routing mesh on every interface, never on loopback alone, so the
stack's replicas are loaded from a container attached to the stack's overlay network. The image
(``containers/loadgen/``: Debian's wrk on the local Debian base) is built once and tagged by
the hash of its recipe, and ``spread.lua`` spreads wrk's threads over every address the
service name resolves to (dnsrr: one per replica), since wrk alone would load the first only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from docker import DockerClient
from docker.types import Ulimit

from scripts.bench import recipes, wrk
from scripts.core import paths
from scripts.core.errors import ToolFailed, ToolTimeout
from scripts.core.poll import poll_until
from scripts.core.records import BaseRecord
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

RECIPE = paths.CONTAINERS / "loadgen"
NAME = "zeroport-loadgen"
LABEL = "io.zeroport.loadgen"
#: Inside the image: the Lua script that spreads threads over the resolved addresses.
SPREAD = "/usr/local/share/wrk/spread.lua"
#: Open files wrk may hold in the container (each connection is one).
NOFILE = 16384
POLL = 0.5


def recipe() -> list[Path]:
    """The files the load generator's image is built from."""
    return sorted(path for path in RECIPE.iterdir() if path.is_file())


def ensure_image(settings: Settings, docker_engine: DockerClient) -> str:
    """Build the load generator unless an image of the same recipe is already there; its tag."""
    return recipes.ensure(
        settings,
        docker_engine,
        name=NAME,
        base_ref=BaseRecord.read().ref,
        files=recipe(),
        what="the load generator (wrk from Debian)",
    )


def command(url: str, *, connections: int, duration: float, threads: int) -> list[str]:
    """wrk's arguments (after the program name) with the spreading script."""
    load = wrk.WrkLoad(url=url, connections=connections, duration=duration, threads=threads)
    argv = load.argv()
    return [*argv[1:-1], "--script", SPREAD, argv[-1]]


def run_wrk(
    docker_engine: DockerClient,
    image: str,
    *,
    network: str,
    url: str,
    connections: int,
    duration: float,
    threads: int,
) -> wrk.WrkResult:
    """Run wrk against ``url`` from a container on ``network``; what it measured."""
    args = command(url, connections=connections, duration=duration, threads=threads)
    container = docker_engine.containers.run(
        image,
        command=args,
        network=network,
        detach=True,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        ulimits=[Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)],
        labels={LABEL: "1"},
    )
    try:
        limit = round(duration) + wrk.RUN_MARGIN

        def finished() -> bool:
            container.reload()
            return container.status in {"exited", "dead"}

        if not poll_until(finished, timeout=limit, interval=POLL):
            raise ToolTimeout(["wrk", *args], limit)
        output = container.logs(stdout=True, stderr=False).decode(errors="replace")
        code = int(container.attrs["State"]["ExitCode"])
        if code != 0:
            errors = container.logs(stdout=False, stderr=True).decode(errors="replace")
            raise ToolFailed(
                ["wrk", *args], code, errors or output, f"from a container on {network}"
            )
        return wrk.parse(output)
    finally:
        container.remove(force=True)
