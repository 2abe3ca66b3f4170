"""The servers a bench loads: containers of what ships, with the compose file's limits.

    service         the image, as the stack runs it (``python3 -m app``)
    service-nolog   the same with APP_ACCESS_LOG=false: what the JSON access log costs
    ceiling         the image with entrypoint ``python3 -m app.ceiling``: a raw ASGI app on the
                    service's own server setup, answering the same bytes
    stock           stock Quart on the Hypercorn CLI (``containers/stock``), built on the same
                    Debian base with the same Python and locked wheels, on the same event loop

Each runs with the limits, hardening and log caps the compose file gives the app (as ``docker
compose config`` renders local mode), on a bridge network of its own, published on loopback.
wrk loads each at its bridge address where this host reaches it (Linux), so that Docker's
userland proxy, which costs as much CPU as a small server, stands in nobody's way.
"""

from __future__ import annotations

import json
import logging
import resource
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx
from docker import DockerClient
from docker.models.containers import Container
from docker.types import LogConfig

from scripts import deploy
from scripts.bench import recipes
from scripts.bench.options import CEILING, SERVICE, SERVICE_NOLOG, STOCK
from scripts.bench.report import Survival
from scripts.core import engine, paths
from scripts.core.errors import Unhealthy
from scripts.core.options import StackOptions
from scripts.core.poll import poll_until
from scripts.core.records import BaseRecord
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

LABEL: Final = "io.zeroport.bench"
CONTAINER_PORT: Final = 8080
READY_TIMEOUT: Final = 60.0
#: Seconds the service gets after a hold to answer again.
SURVIVAL_TIMEOUT: Final = 15.0
CEILING_ENTRYPOINT: Final = ("/usr/bin/python3", "-m", "app.ceiling")
STOCK_RECIPE: Final = paths.CONTAINERS / "stock"
STOCK_NAME: Final = "zeroport-stock"


@dataclass(frozen=True, kw_only=True)
class Servers:
    """The running containers, the URLs wrk loads them at, and the service's event loop."""

    containers: dict[str, Container]
    urls: dict[str, str]
    loopback: dict[str, str]
    #: True when ``urls`` are bridge addresses (no userland proxy in the path).
    direct: bool
    loop: str


def app_service(settings: Settings, image: str) -> dict[str, Any]:
    """The compose file's ``app`` service for ``image``, as ``docker compose config`` renders it."""
    rendered = deploy.render(settings, StackOptions(project="zpbench"), image)
    service: dict[str, Any] = rendered["services"]["app"]
    return service


def server_kwargs(service: Mapping[str, Any], *, image: str, run_id: str) -> dict[str, Any]:
    """``containers.run`` arguments: the compose service's limits, hardening and log caps."""
    logging_options = (service.get("logging") or {}).get("options") or {}
    return {
        "image": image,
        "detach": True,
        "read_only": bool(service.get("read_only")),
        "cap_drop": list(service.get("cap_drop") or []),
        "security_opt": list(service.get("security_opt") or []),
        "init": bool(service.get("init")),
        "user": str(service.get("user") or "1000:1000"),
        "environment": dict(service.get("environment") or {}),
        "mem_limit": _int(service.get("mem_limit")),
        "memswap_limit": _int(service.get("memswap_limit")),
        "pids_limit": _int(service.get("pids_limit")),
        "nano_cpus": int(float(service["cpus"]) * 1e9) if service.get("cpus") else None,
        # The service writes a JSON line per request: its log path is part of what it costs.
        "log_config": LogConfig(type=LogConfig.types.JSON, config=dict(logging_options)),
        "labels": {LABEL: run_id},
    }


def limits_of(service: Mapping[str, Any]) -> dict[str, Any]:
    """The limits a compose service sets, for the report."""
    return {
        "cpus": float(service["cpus"]) if service.get("cpus") else None,
        "memory": _int(service.get("mem_limit")),
        "pids": _int(service.get("pids_limit")),
    }


def _int(value: object) -> int | None:
    return int(str(value)) if value else None


def stock_image(settings: Settings, docker_engine: DockerClient) -> str:
    """Build stock Quart on the Hypercorn CLI unless it is already built; its tag."""
    sources = sorted(p for p in STOCK_RECIPE.iterdir() if p.is_file())
    return recipes.ensure(
        settings,
        docker_engine,
        name=STOCK_NAME,
        base_ref=BaseRecord.read().ref,
        files=[*sources, paths.REQUIREMENTS],
        what="stock Quart on the Hypercorn CLI (the comparison)",
    )


def wait_ready(url: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``url`` until it answers 200; :class:`Unhealthy` after ``timeout``."""
    last = ["no answer"]
    with httpx.Client(timeout=2.0, trust_env=False) as client:

        def answers() -> bool:
            try:
                status = client.get(url).status_code
            except httpx.HTTPError as exc:
                last.append(type(exc).__name__)
                return False
            last.append(f"status {status}")
            return status == 200

        if poll_until(answers, timeout=timeout):
            return
    raise Unhealthy(f"{url} did not answer 200 within {timeout:g} s ({last[-1]})")


def survived(box: Container, url: str) -> Survival:
    """How ``box`` looks now: its state, restarts, OOM kill, and whether ``url`` answers 200."""
    try:
        wait_ready(url, timeout=SURVIVAL_TIMEOUT)
        answering = True
    except Unhealthy:
        answering = False
    box.reload()
    state = box.attrs["State"]
    return Survival(
        status=str(state.get("Status")),
        restarts=int(box.attrs.get("RestartCount", 0)),
        oom_killed=bool(state.get("OOMKilled")),
        answering=answering,
    )


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-files limit (wrk inherits it) towards ``needed``; the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def event_loop(box: Container) -> str:
    """The event loop the service reported in its ``listening`` line (uvloop or asyncio)."""
    for line in box.logs(stdout=True, stderr=False).decode(errors="replace").splitlines():
        if '"listening"' in line or '"supervising workers"' in line:
            try:
                return str(json.loads(line).get("loop", ""))
            except ValueError:
                continue
    return ""


@contextmanager
def servers(
    settings: Settings,
    docker_engine: DockerClient,
    *,
    targets: tuple[str, ...],
    image: str,
    run_id: str,
    first_port: int,
    service: Mapping[str, Any],
) -> Iterator[Servers]:
    """Start ``targets`` side by side, each on its loopback port; removed on exit."""
    ports = {name: first_port + offset for offset, name in enumerate(targets)}
    for port in ports.values():
        engine.require_port("127.0.0.1", port)
    stock = stock_image(settings, docker_engine) if STOCK in targets else None
    network = docker_engine.networks.create(
        f"zpbench-{run_id}", driver="bridge", labels={LABEL: run_id}
    )
    try:
        containers: dict[str, Container] = {}
        for name in targets:
            containers[name] = start(
                docker_engine,
                name,
                service=service,
                image=image,
                run_id=run_id,
                network=str(network.name),
                port=ports[name],
                stock=stock if name == STOCK else None,
                loop=event_loop(containers[SERVICE]) if SERVICE in containers else "",
            )
            if name == SERVICE:
                wait_ready(f"http://127.0.0.1:{ports[name]}/")
        loopback = {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
        for url in loopback.values():
            wait_ready(url)
        urls = _bridge_urls(containers, str(network.name)) if settings.system == "Linux" else None
        yield Servers(
            containers=containers,
            urls=urls or loopback,
            loopback=loopback,
            direct=urls is not None,
            loop=event_loop(containers[SERVICE]) if SERVICE in containers else "",
        )
    finally:
        remove_run(docker_engine, run_id)


def start(
    docker_engine: DockerClient,
    name: str,
    *,
    service: Mapping[str, Any],
    image: str,
    run_id: str,
    network: str,
    port: int,
    stock: str | None = None,
    loop: str = "",
    cpus: float | None = None,
    environment: Mapping[str, str] | None = None,
) -> Container:
    """One server container: ``name`` says which (see the module docstring)."""
    kwargs = server_kwargs(service, image=stock or image, run_id=run_id)
    kwargs["environment"] = {**kwargs["environment"], **(environment or {})}
    if cpus is not None:
        kwargs["nano_cpus"] = int(cpus * 1e9)
    extra: dict[str, Any] = {}
    if name == CEILING:
        extra["entrypoint"] = list(CEILING_ENTRYPOINT)
    elif name == SERVICE_NOLOG:
        kwargs["environment"]["APP_ACCESS_LOG"] = "false"
    elif name == STOCK:
        # The same event loop as the service's, as the CLI names it (-k uvloop / asyncio).
        extra["command"] = ["--worker-class", loop or "asyncio", "stock_app:app"]
    container: Container = docker_engine.containers.run(
        **kwargs,
        **extra,
        name=f"zpbench-{name}-{run_id}",
        network=network,
        ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
    )
    return container


def bridge_url(container: Container, network: str) -> str:
    """``container``'s URL at its address on ``network``."""
    container.reload()
    address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return f"http://{address}:{CONTAINER_PORT}/"


def _bridge_urls(containers: Mapping[str, Container], network: str) -> dict[str, str] | None:
    """Each container's URL at its bridge address, if this host reaches it (Linux does)."""
    urls = {name: bridge_url(container, network) for name, container in containers.items()}
    try:
        wait_ready(next(iter(urls.values())), timeout=5)
    except Unhealthy:
        return None
    return urls


def remove_run(docker_engine: DockerClient, run_id: str) -> None:
    """Remove the containers and the network one bench run created."""
    label = f"{LABEL}={run_id}"
    for container in docker_engine.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for network in docker_engine.networks.list(filters={"label": label}):
        network.remove()
