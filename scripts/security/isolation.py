"""Network isolation of the tunnel topology, proved on this machine without Cloudflare.

The check brings up the tunnel mode's app (compose.yaml + compose.tunnel.yaml, ``app`` only,
under its own project name) and builds the rest of the topology around it from the project's
own image, so nothing is pulled and no token is needed:

* a stand-in connector in cloudflared's place, on the internal ``origin`` network and on an
  ``egress`` network (a plain bridge, as compose declares it; compose creates only the networks
  of the services it starts, so the check creates this one);
* a sentinel on the egress network only: a TCP listener that answers ``sentinel``.

Then: the connector reaches ``http://app:8080/healthz`` by service name and reaches the
sentinel (both positive controls: the topology works and the sentinel listens); the app cannot
resolve the sentinel's name nor connect to its address; every network the app is on is
internal; the app publishes no port; and nothing new listens on the host (Linux: ``ss -ltn``
before and after; the check names its platform). Everything it creates carries its project
label and is removed afterwards.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
from docker import DockerClient
from docker.models.containers import Container

from scripts import deploy
from scripts.core import proc
from scripts.core.checks import Check, listing
from scripts.core.errors import DeployError, ToolError
from scripts.core.options import Mode, StackOptions
from scripts.core.poll import poll_until
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

PROJECT = "zpsecnet"
LABEL = "io.zeroport.security"
SENTINEL_PORT = 9000
#: Seconds the helper containers live at most, whatever happens to this process.
HELPER_LIFETIME = 300
CONNECT_TIMEOUT = 3.0
UP_TIMEOUT = 120.0

#: The sentinel: answer ``sentinel`` to each connection, for HELPER_LIFETIME seconds at most.
SENTINEL = f"""
import socket, time
deadline = time.monotonic() + {HELPER_LIFETIME}
server = socket.create_server(("0.0.0.0", {SENTINEL_PORT}))
server.settimeout(1)
while time.monotonic() < deadline:
    try:
        conn, _ = server.accept()
    except TimeoutError:
        continue
    with conn:
        conn.sendall(b"sentinel\\n")
"""
#: Connect to HOST PORT: print what happened, exit 0 only when a connection opened.
CONNECT = f"""
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout={CONNECT_TIMEOUT}) as s:
        print("connected", s.recv(64).decode(errors="replace").strip())
except OSError as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
"""
#: GET a URL: print the status, exit 0 only on 200.
FETCH = f"""
import http.client, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
try:
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout={CONNECT_TIMEOUT})
    conn.request("GET", url.path or "/")
    status = conn.getresponse().status
except OSError as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
print(status)
sys.exit(0 if status == 200 else 1)
"""
SLEEP = f"import time; time.sleep({HELPER_LIFETIME})"


@dataclass(frozen=True, kw_only=True)
class Probe:
    """What a small Python program run inside a container printed, and whether it succeeded."""

    ok: bool
    output: str


@dataclass(frozen=True, kw_only=True)
class Listener:
    """A TCP socket listening in the host's network namespace, and who holds it."""

    address: str
    #: The program holding it (``docker-proxy``), when ``ss`` may say (root, or our own).
    program: str = ""
    pid: int | None = None
    #: For Docker's userland proxy: the ``container-ip:port`` it forwards to.
    forwards_to: str = ""

    def describe(self) -> str:
        """``127.0.0.1:8080 (docker-proxy -> 172.20.0.2:8080)``."""
        who = self.program or "unknown program"
        return f"{self.address} ({who}{' -> ' + self.forwards_to if self.forwards_to else ''})"


_USERS = re.compile(r'users:\(\("(?P<program>[^"]+)",pid=(?P<pid>[0-9]+)')


def host_listeners(settings: Settings, procfs: Path = Path("/proc")) -> list[Listener]:
    """Every TCP listener on the host (Linux ``ss -ltnp``), with the proxy's target if it is one."""
    result = proc.run(["ss", "-Hltnp"], env=settings.tool_env(), timeout=30)
    return [_with_target(listener, procfs) for listener in parse_ss(result.stdout)]


def parse_ss(output: str) -> list[Listener]:
    """The listeners in ``ss -ltn[p]`` output (with or without its header line)."""
    found = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN":
            users = _USERS.search(line)
            found.append(
                Listener(
                    address=fields[3],
                    program=users.group("program") if users else "",
                    pid=int(users.group("pid")) if users else None,
                )
            )
    return found


def proxy_target(cmdline: str) -> str:
    """The ``ip:port`` a docker-proxy command line forwards to, or ``""``."""
    args = cmdline.split()
    values = dict(itertools.pairwise(args))
    address, port = values.get("-container-ip"), values.get("-container-port")
    return f"{address}:{port}" if address and port else ""


def _with_target(listener: Listener, proc: Path) -> Listener:
    if listener.program != "docker-proxy" or listener.pid is None:
        return listener
    try:
        cmdline = (proc / str(listener.pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return listener
    return dataclasses.replace(listener, forwards_to=proxy_target(cmdline.decode(errors="replace")))


def host_listener_check(
    system: str, before: list[Listener], after: list[Listener], addresses: set[str]
) -> Check:
    """Nothing on the host listens for the app; listeners others opened meanwhile are named."""
    serving = listeners_for(after, before, addresses)
    known = {listener.address for listener in before}
    unrelated = [it for it in after if it.address not in known and it not in serving]
    return Check(
        id="NET-HOST-NO-LISTENER",
        title="nothing on the host listens for the app (Linux, ss -ltnp)",
        ok=not serving,
        evidence=f"platform {system}; {len(after)} host listeners; for the app at "
        f"{listing(sorted(addresses))}: {listing(it.describe() for it in serving)}; opened "
        f"meanwhile by others: {listing(it.describe() for it in unrelated)}",
    )


def listeners_for(
    listeners: list[Listener], before: list[Listener], addresses: set[str]
) -> list[Listener]:
    """The listeners that serve the app: a proxy forwarding to one of its ``addresses``, or a
    new listener whose program ``ss`` would not name (no privilege to see it: assume the worst).
    """
    known = {listener.address for listener in before}
    return [
        listener
        for listener in listeners
        if listener.forwards_to.rsplit(":", 1)[0] in addresses
        or (not listener.program and listener.address not in known)
    ]


def run_python(container: Container, program: str, *args: str) -> Probe:
    """Run ``python3 -c program args`` inside ``container`` (the image has no shell)."""
    code, output = container.exec_run(["/usr/bin/python3", "-c", program, *args])
    text = output.decode(errors="replace").strip() if isinstance(output, bytes) else ""
    return Probe(ok=code == 0, output=text.splitlines()[-1] if text else f"exit {code}")


def _hardened(image: str, project: str) -> dict[str, Any]:
    return {
        "image": image,
        "detach": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "user": "1000:1000",
        "mem_limit": "64m",
        "pids_limit": 32,
        "labels": {LABEL: project},
    }


@contextmanager
def topology(
    settings: Settings, docker_engine: DockerClient, image: str, project: str = PROJECT
) -> Iterator[tuple[Container, Container, Container]]:
    """The tunnel topology with stand-ins: (app, connector, sentinel); removed on exit."""
    options = StackOptions(mode=Mode.TUNNEL, project=project, token_file=Path(os.devnull))
    argv = deploy.compose_argv(settings, options)
    env = deploy.compose_env(settings, options, image)
    try:
        try:
            proc.run(
                [*argv, "up", "--detach", "--wait", "--wait-timeout", str(int(UP_TIMEOUT)), "app"],
                env=env,
                timeout=UP_TIMEOUT + 60,
            )
        except ToolError as exc:
            raise DeployError(
                f"the tunnel topology for the isolation check did not start: {exc}"
            ) from None
        app = docker_engine.containers.list(
            filters={
                "label": [f"com.docker.compose.project={project}", "com.docker.compose.service=app"]
            }
        )[0]
        egress = docker_engine.networks.create(
            f"{project}_egress", driver="bridge", labels={LABEL: project}
        )
        sentinel = docker_engine.containers.run(
            **_hardened(image, project),
            name=f"{project}-sentinel",
            entrypoint=["/usr/bin/python3", "-c", SENTINEL],
            network=egress.name,
        )
        connector = docker_engine.containers.run(
            **_hardened(image, project),
            name=f"{project}-connector",
            entrypoint=["/usr/bin/python3", "-c", SLEEP],
            network=f"{project}_origin",
        )
        egress.connect(connector)
        yield app, connector, sentinel
    finally:
        remove(settings, docker_engine, project)


def remove(settings: Settings, docker_engine: DockerClient, project: str = PROJECT) -> None:
    """Remove what :func:`topology` created (also what an interrupted run left behind)."""
    for container in docker_engine.containers.list(
        all=True, filters={"label": f"{LABEL}={project}"}
    ):
        container.remove(force=True)
    for network in docker_engine.networks.list(filters={"label": f"{LABEL}={project}"}):
        try:
            network.remove()
        except docker.errors.APIError as exc:
            logger.warning("could not remove network %s: %s", network.name, exc)
    options = StackOptions(mode=Mode.TUNNEL, project=project, token_file=Path(os.devnull))
    proc.run(
        [*deploy.compose_argv(settings, options), "down", "--remove-orphans"],
        env=deploy.compose_env(settings, options, "unused"),
        timeout=120,
        check=False,
    )


def _wait_listening(connector: Container, sentinel: str, timeout: float = 15.0) -> Probe:
    probes = [run_python(connector, CONNECT, sentinel, str(SENTINEL_PORT))]

    def listening() -> bool:
        if not probes[-1].ok:
            probes.append(run_python(connector, CONNECT, sentinel, str(SENTINEL_PORT)))
        return probes[-1].ok

    poll_until(listening, timeout=timeout, interval=0.5)
    return probes[-1]


def isolation_checks(
    settings: Settings, docker_engine: DockerClient, image: str, project: str = PROJECT
) -> list[Check]:
    """Every isolation check on a tunnel topology built for the purpose."""
    remove(settings, docker_engine, project)
    linux = settings.system == "Linux"
    before = host_listeners(settings) if linux else []
    with topology(settings, docker_engine, image, project) as (app, connector, sentinel):
        sentinel.reload()
        app.reload()
        sentinel_name = str(sentinel.name)
        sentinel_ip = next(iter(sentinel.attrs["NetworkSettings"]["Networks"].values()))[
            "IPAddress"
        ]
        reached_sentinel = _wait_listening(connector, sentinel_name)
        reached_app = run_python(connector, FETCH, "http://app:8080/healthz")
        by_name = run_python(app, CONNECT, sentinel_name, str(SENTINEL_PORT))
        by_ip = run_python(app, CONNECT, sentinel_ip, str(SENTINEL_PORT))
        networks = _networks(docker_engine, app)
        published = app.attrs["HostConfig"].get("PortBindings") or {}
        after = host_listeners(settings) if linux else []
        app_addresses = {
            str(network["IPAddress"])
            for network in app.attrs["NetworkSettings"]["Networks"].values()
        }
    checks = [
        Check(
            id="NET-CONNECTOR-REACHES-APP",
            title="the connector reaches http://app:8080/healthz by service name",
            ok=reached_app.ok,
            evidence=f"connector -> app:8080/healthz: {reached_app.output}",
        ),
        Check(
            id="NET-SENTINEL-LISTENS",
            title="the sentinel on the egress network answers (control)",
            ok=reached_sentinel.ok,
            evidence=f"connector -> {sentinel_name}:{SENTINEL_PORT}: {reached_sentinel.output}",
        ),
        Check(
            id="NET-APP-NO-EGRESS-BY-NAME",
            title="the app cannot reach the egress network by name",
            ok=not by_name.ok,
            evidence=f"app -> {sentinel_name}:{SENTINEL_PORT}: {by_name.output}",
        ),
        Check(
            id="NET-APP-NO-EGRESS-BY-ADDRESS",
            title="the app cannot reach the egress network by address",
            ok=not by_ip.ok,
            evidence=f"app -> {sentinel_ip}:{SENTINEL_PORT}: {by_ip.output}",
        ),
        Check(
            id="NET-APP-INTERNAL-ONLY",
            title="every network the app joins is internal (no route out)",
            ok=bool(networks) and all(internal for internal in networks.values()),
            evidence=listing(f"{name} internal={internal}" for name, internal in networks.items()),
        ),
        Check(
            id="NET-APP-NO-PUBLISHED-PORT",
            title="the app publishes no port",
            ok=not published,
            evidence=listing(published) if published else "PortBindings empty",
        ),
    ]
    if linux:
        checks.append(host_listener_check(settings.system, before, after, app_addresses))
    return checks


def _networks(docker_engine: DockerClient, container: Container) -> dict[str, bool]:
    names = sorted(container.attrs["NetworkSettings"]["Networks"])
    return {name: bool(docker_engine.networks.get(name).attrs.get("Internal")) for name in names}
