"""Bringing the stack up and down: Compose v2 on one engine, or a swarm stack.

``up`` never leaves a half-deployed stack. Before it touches what runs, it checks what can be
checked (engine, image, port, token file, third-party images) and runs the new image once as a
*candidate* container, hardened as in the stack, until its health check passes; only then does
it replace the running release. A candidate that never turns healthy stops the deploy with the
previous release untouched. On swarm the rolling update itself is start-first and rolls back on
its own, and ``up`` reports that rollback as a failure.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker.errors
import yaml
from docker import DockerClient

from scripts.core import engine, paths, proc
from scripts.core.engine import run_until_healthy
from scripts.core.errors import (
    DeployError,
    PortInUse,
    ReportError,
    ToolError,
    Unhealthy,
    WorkflowError,
)
from scripts.core.options import DeployTarget, EndpointMode, Mode, StackOptions
from scripts.core.poll import poll_until
from scripts.core.records import STACK_RECORD, Deployable, StackRecord, read_record
from scripts.core.settings import MINUTES, Settings
from scripts.deploy import releases, swarm

logger = logging.getLogger(__name__)

COMPOSE_FILES = {
    Mode.LOCAL: (paths.COMPOSE, paths.CONTAINERS / "compose.local.yaml"),
    Mode.TUNNEL: (paths.COMPOSE, paths.CONTAINERS / "compose.tunnel.yaml"),
}
COMPOSE_TIMEOUT = 5 * MINUTES
POLL = 0.5


def compose_argv(settings: Settings, options: StackOptions) -> list[str]:
    """``docker compose -p PROJECT -f compose.yaml -f compose.MODE.yaml``."""
    argv = [*engine.compose_cli(settings), "--project-name", options.project]
    for file in COMPOSE_FILES[options.mode]:
        argv += ["--file", str(file)]
    return argv


def compose_env(settings: Settings, options: StackOptions, image: str) -> dict[str, str]:
    """The variables the compose files interpolate."""
    return settings.tool_env(
        APP_IMAGE=image,
        APP_PORT=str(options.port),
        COMPOSE_PROJECT_NAME=options.project,
        TUNNEL_TOKEN_FILE=str(options.token_file.resolve()),
    )


def render(settings: Settings, options: StackOptions, image: str) -> dict[str, Any]:
    """The stack as Compose resolves it (``docker compose config``), as data."""
    result = proc.run(
        [*compose_argv(settings, options), "config", "--format", "json"],
        env=compose_env(settings, options, image),
        timeout=60,
        hint="check the compose files with: docker compose config",
    )
    return dict(json.loads(result.stdout))


def up(
    settings: Settings, docker_engine: DockerClient, options: StackOptions, image: Deployable
) -> StackRecord:
    """Deploy ``image`` as ``options`` say; the running stack's record."""
    preflight(settings, docker_engine, options, image)
    try:
        run_until_healthy(docker_engine, image.tag, options.health_timeout)
    except Unhealthy as exc:
        raise Unhealthy(f"{exc}; the running release was left as it was") from None
    if options.target is DeployTarget.SWARM:
        record = deploy_swarm(settings, docker_engine, options, image)
    else:
        record = _up_compose(settings, docker_engine, options, image)
    logger.info("%s stack %s runs %s", record.target, record.project, record.image)
    return record


def preflight(
    settings: Settings, docker_engine: DockerClient, options: StackOptions, image: Deployable
) -> None:
    """Everything that can be checked before the running release is touched."""
    try:
        docker_engine.images.get(image.id)
    except docker.errors.ImageNotFound:
        raise DeployError(
            f"image {image.tag} ({image.id[:19]}) is not in the engine; run: doit image"
        ) from None
    if options.mode is Mode.TUNNEL:
        if not options.token_file.is_file():
            raise DeployError(
                f"tunnel mode needs the tunnel token in {options.token_file}, which does not "
                "exist; create it with: doit tunnel (or save the token from the Cloudflare "
                "dashboard there, mode 0600), or deploy in local mode"
            )
        config = render(settings, options, image.tag)
        connector_user = config["services"]["cloudflared"].get("user", "0:0")
        if not readable_by(options.token_file, connector_user):
            raise DeployError(
                f"cloudflared runs as {connector_user} and reads {options.token_file} through a "
                "bind mount, but that user cannot read it; make it theirs, keeping mode 0600: "
                f"chown {connector_user} {options.token_file}"
            )
        for name, service in config["services"].items():
            if name != "app":
                _ensure_third_party(docker_engine, service["image"])
    loopback = options.mode is Mode.LOCAL and options.target is DeployTarget.COMPOSE
    taken = loopback and not engine.port_free("127.0.0.1", options.port)
    if taken and not _ours(docker_engine, options):
        raise PortInUse("127.0.0.1", options.port)


def connector_user() -> str:
    """The ``uid:gid`` cloudflared runs as in tunnel mode (from compose.tunnel.yaml)."""
    data = yaml.safe_load(COMPOSE_FILES[Mode.TUNNEL][1].read_text())
    return str(data["services"]["cloudflared"]["user"])


def readable_by(path: Path, user: str) -> bool:
    """True when ``uid:gid`` (a compose ``user``) may read ``path`` by its owner and mode.

    A compose file secret is a bind mount of the host file: the container user reads it with
    the file's own owner and mode (compose's uid/gid/mode apply only on swarm).
    """
    uid_text, _, gid_text = user.partition(":")
    uid, gid = int(uid_text), int(gid_text or uid_text)
    status = path.stat()
    if uid == 0:
        return True
    if status.st_uid == uid:
        return bool(status.st_mode & stat.S_IRUSR)
    if status.st_gid == gid:
        return bool(status.st_mode & stat.S_IRGRP)
    return bool(status.st_mode & stat.S_IROTH)


def _ours(docker_engine: DockerClient, options: StackOptions) -> bool:
    """True when a container of this project already publishes the port (a redeploy)."""
    for container in docker_engine.containers.list(
        filters={"label": f"com.docker.compose.project={options.project}"}
    ):
        for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
            if any(b.get("HostPort") == str(options.port) for b in bindings or []):
                return True
    return False


def _ensure_third_party(docker_engine: DockerClient, reference: str) -> None:
    try:
        docker_engine.images.get(reference)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        logger.info("pulling %s", reference)
        docker_engine.images.pull(reference)
    except docker.errors.APIError as exc:
        raise DeployError(
            f"{reference} is not here and cannot be pulled ({str(exc).splitlines()[0][:120]}); "
            "tunnel mode needs a registry that serves it (Docker Hub or a mirror), or "
            "`docker load` of that image"
        ) from None


def _up_compose(
    settings: Settings, docker_engine: DockerClient, options: StackOptions, image: Deployable
) -> StackRecord:
    argv = compose_argv(settings, options)
    env = compose_env(settings, options, image.tag)
    try:
        proc.run(
            [
                *argv,
                "up",
                "--detach",
                "--wait",
                "--wait-timeout",
                str(int(options.health_timeout)),
                "--remove-orphans",
                "--scale",
                f"app={options.replicas}",
            ],
            env=env,
            timeout=options.health_timeout + COMPOSE_TIMEOUT,
        )
    except ToolError as exc:
        raise DeployError(f"docker compose up failed: {exc}") from None
    url = f"http://127.0.0.1:{options.port}" if options.mode is Mode.LOCAL else None
    network = "local" if options.mode is Mode.LOCAL else "origin"
    return _record(options, image, url, f"{options.project}_{network}")


def deploy_swarm(
    settings: Settings, docker_engine: DockerClient, options: StackOptions, image: Deployable
) -> StackRecord:
    """Deploy or update the swarm stack and wait for it (``up`` without the candidate run)."""
    ensure_swarm(docker_engine)
    if options.endpoint_mode is EndpointMode.AUTO:
        chosen = EndpointMode.VIP if engine.ipvs_available(settings) else EndpointMode.DNSRR
        if chosen is EndpointMode.DNSRR:
            logger.warning(
                "this kernel has no IPVS, so swarm's virtual IP cannot route; the service name "
                "resolves to every replica instead (endpoint_mode=dnsrr)"
            )
        options = dataclasses.replace(options, endpoint_mode=chosen)
    stack = swarm.render(render(settings, options, image.tag), options)
    stack_file = paths.BUILD / "stack" / f"{options.project}.swarm.yaml"
    stack_file.parent.mkdir(parents=True, exist_ok=True)
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=True))
    env = settings.tool_env()
    docker_cli = proc.which("docker", env)
    proc.run(
        [docker_cli, "stack", "deploy", "--compose-file", str(stack_file), options.project],
        env=env,
        timeout=COMPOSE_TIMEOUT,
    )
    wait_service(docker_engine, f"{options.project}_app", image.tag, options)
    network = "local" if options.mode is Mode.LOCAL else "origin"
    return _record(options, image, None, f"{options.project}_{network}")


def ensure_swarm(docker_engine: DockerClient) -> None:
    """Make this engine a single-node swarm manager, bound to loopback, if it is not one."""
    state = docker_engine.info().get("Swarm", {}).get("LocalNodeState")
    if state == "active":
        return
    logger.info("initialising a single-node swarm on 127.0.0.1")
    docker_engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")


def wait_service(docker_engine: DockerClient, name: str, image: str, options: StackOptions) -> None:
    """Wait until the service runs ``options.replicas`` healthy tasks of ``image``."""
    deadline = time.monotonic() + options.health_timeout
    while time.monotonic() < deadline:
        service = docker_engine.services.get(name)  # type: ignore[no-untyped-call]
        update = (service.attrs.get("UpdateStatus") or {}).get("State", "")
        if update == "rollback_started":
            time.sleep(POLL)  # swarm is putting the previous release back: let it finish
            continue
        if update in {"rollback_completed", "rollback_paused"}:
            message = service.attrs["UpdateStatus"].get("Message", "")
            raise Unhealthy(
                f"swarm rolled {name} back: the new image {image} failed its health checks "
                f"({message}); the previous release runs again"
            )
        spec_image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        # Tasks of the new image that run (swarm holds a task with a health check in
        # "starting" until it is healthy); old tasks still running do not count.
        running = [
            task
            for task in service.tasks(filters={"desired-state": "running"})
            if task["Status"]["State"] == "running"
            and task["Spec"]["ContainerSpec"]["Image"].split("@")[0] == image
        ]
        if (
            spec_image.split("@")[0] == image
            and len(running) == options.replicas
            and update in {"", "completed"}
        ):
            return
        time.sleep(POLL)
    raise Unhealthy(
        f"{name} did not reach {options.replicas} healthy replicas of {image} within "
        f"{options.health_timeout:g} s; see: docker service ps {name}"
    )


def down(settings: Settings, docker_engine: DockerClient, options: StackOptions) -> None:
    """Stop and remove the stack (its containers and networks; images stay)."""
    if options.target is DeployTarget.SWARM:
        env = settings.tool_env()
        proc.run(
            [proc.which("docker", env), "stack", "rm", options.project],
            env=env,
            timeout=COMPOSE_TIMEOUT,
            check=False,
        )
        _wait_gone(docker_engine, {"label": f"com.docker.stack.namespace={options.project}"})
    else:
        proc.run(
            [
                *engine.compose_cli(settings),
                "--project-name",
                options.project,
                "down",
                "--remove-orphans",
            ],
            env=settings.tool_env(),
            timeout=COMPOSE_TIMEOUT,
        )
    try:
        if StackRecord.read().project == options.project:
            STACK_RECORD.unlink()
    except ReportError:
        pass  # no record, or not one of ours: nothing to forget


def _wait_gone(docker_engine: DockerClient, filters: dict[str, str | list[str] | bool]) -> None:
    def gone() -> bool:
        return not docker_engine.containers.list(
            all=True, filters=filters
        ) and not docker_engine.networks.list(filters=filters)

    if not poll_until(gone, timeout=60, interval=POLL):
        raise DeployError(
            f"the stack's containers or networks ({filters}) are still there after 60 s"
        )


def running(docker_engine: DockerClient, record: StackRecord) -> bool:
    """True while the recorded stack's app runs healthy (doit's check that ``up`` is done)."""
    label = (
        f"com.docker.stack.namespace={record.project}"
        if record.target == DeployTarget.SWARM.value
        else f"com.docker.compose.project={record.project}"
    )
    containers = docker_engine.containers.list(filters={"label": label})
    apps = [
        c
        for c in containers
        if c.attrs["Config"]["Image"].split("@")[0] == record.image
        and (c.attrs["State"].get("Health") or {}).get("Status") == "healthy"
    ]
    return len(apps) >= record.replicas


def _record(options: StackOptions, image: Deployable, url: str | None, network: str) -> StackRecord:
    return StackRecord(
        project=options.project,
        mode=options.mode.value,
        target=options.target.value,
        image=image.tag,
        image_id=image.id,
        replicas=options.replicas,
        port=options.port,
        url=url,
        network=network,
        started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def step_up(variables: dict[str, str]) -> None:
    """doit up: deploy the recorded image with the options given on the command line."""
    options = StackOptions.from_vars(variables)
    settings = Settings.from_env()
    docker_engine = engine.client(settings)
    image = read_record()
    record = up(settings, docker_engine, options, image)
    record.write()
    releases.record(record, revision=image.revision)


def step_down(variables: dict[str, str]) -> None:
    """doit down: remove the recorded stack (or the one the options name)."""
    settings = Settings.from_env()
    docker_engine = engine.client(settings)
    options = StackOptions.from_vars(variables)
    if STACK_RECORD.exists() and not variables:
        record = StackRecord.read()
        options = StackOptions.from_vars(
            {"project": record.project, "mode": record.mode, "target": record.target}
        )
    down(settings, docker_engine, options)
    logger.info("stack %s removed", options.project)


def is_running(variables: dict[str, str]) -> bool:
    """doit's up-to-date check for ``up``: the recorded stack runs healthy with these options."""
    try:
        record = StackRecord.read()
        options = StackOptions.from_vars(variables)
        if (record.mode, record.target, record.replicas, record.project, record.port) != (
            options.mode.value,
            options.target.value,
            options.replicas,
            options.project,
            options.port,
        ):
            return False
        return running(engine.client(Settings.from_env()), record)
    except WorkflowError:
        return False
