"""wrk inside a Docker network: for servers that only a container on their network can reach.

Swarm publishes through its routing mesh on every interface, never on loopback alone, so the
stack's replicas are loaded from a container attached to the stack's overlay network. The image
(``containers/loadgen/``: Debian's wrk on the local Debian base) is built once and tagged by
the hash of its recipe, and ``spread.lua`` spreads wrk's threads over every address the
service name resolves to (dnsrr: one per replica), since wrk alone would load the first only.
"""

from __future__ import annotations

import hashlib
import logging

import docker.errors
from docker import DockerClient
from docker.types import Ulimit

from scripts.bench import wrk
from scripts.core import engine, paths, proc
from scripts.core.errors import BuildError, ToolError, ToolFailed, ToolTimeout
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


def tag(base_ref: str) -> str:
    """The load generator's tag: the hash of its recipe and of the base it starts from."""
    digest = hashlib.sha256(base_ref.encode())
    for path in sorted(RECIPE.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{NAME}:{digest.hexdigest()[:12]}"


def ensure_image(settings: Settings, docker_engine: DockerClient) -> str:
    """Build the load generator unless an image of the same recipe is already there; its tag."""
    base = BaseRecord.read()
    name = tag(base.ref)
    try:
        docker_engine.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    cli = engine.build_cli(settings)
    argv = [
        *cli.argv,
        "--file",
        str(RECIPE / "Dockerfile"),
        "--build-arg",
        f"BASE_IMAGE={base.ref}",
        "--tag",
        name,
    ]
    if settings.ca_bundle:
        argv += ["--secret", f"id=ca_bundle,src={settings.ca_bundle}"]
    argv.append(str(RECIPE))
    logger.info("building the load generator %s (wrk from Debian)", name)
    try:
        proc.run(argv, env=settings.tool_env(**cli.env), timeout=settings.build_timeout)
    except ToolError as exc:
        raise BuildError(f"the load generator image did not build: {exc}") from None
    return name


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
