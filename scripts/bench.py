"""``doit bench``: how fast the service is in its container, against its ceiling, in one run.

What runs, in order (every run bounded in time; all load goes to containers this step starts):

1. Two containers of the recorded image, side by side, each with the limits, hardening and log
   caps the compose file gives the app (as ``docker compose config`` renders local mode): the
   service, and the *ceiling* - the same image with entrypoint ``python3 -m app.ceiling``, a
   raw ASGI app answering the same bytes on the same in-process Hypercorn config.
2. A warm-up of each, then the concurrency sweep (default 1, 16, 64, 256, 1024 connections),
   service and ceiling one after the other at each point so that both meet the same machine;
   at the reference concurrency (64) three such pairs. The service's share of the ceiling is
   what the regression gate compares: the machine's speed, which drifts from run to run and
   with whatever else runs, cancels out.
3. One point through the published loopback port: what local mode's users meet, with Docker's
   userland proxy in the path. The sweep loads each container's bridge address instead (a
   Linux host reaches it), so that the proxy, which costs as much CPU as a small server,
   neither caps the ceiling nor takes the service's share of the cores.
4. A soak: sustained load on the service at the reference concurrency for a stated time, as
   back-to-back wrk runs that each open fresh connections (so clients keep arriving and
   leaving, as they do in production). The slope of the service's resident memory over it,
   after the first run, is gated: a leak per connection or per request shows as a climb.
5. A hold of 10,000 concurrent connections on the service (the open-files limit is raised for
   it, within the hard limit), for a bounded time; whether the container survived is recorded.
6. Replicas: the stack deployed to swarm with 1, then 2 app replicas, loaded from a wrk
   container on the stack's overlay network (swarm cannot publish on loopback alone). This
   machine's kernel has no IPVS, so swarm's VIP does not route: the stack runs in ``dnsrr``
   endpoint mode and wrk's threads are spread over the replicas' addresses
   (``containers/loadgen/spread.lua``).

The containers' CPU and memory are sampled throughout (:mod:`scripts.container_stats`). Results:
``build/bench/<timestamp>.json``, ``.md`` and ``.png``, and ``build/bench/latest.json`` (the doit
target). The servers and the load generator share the machine's cores; every report says so.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from docker import DockerClient
from docker.models.containers import Container
from docker.types import LogConfig
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from scripts import engine, loadgen, paths, stack, swarm, tools, wrk
from scripts.bench_report import (
    MIB,
    BenchResult,
    Margins,
    Point,
    Round,
    Soak,
    Survival,
    Usage,
    baseline_for,
    enforce,
    gate,
    machine_key,
    markdown,
    plot,
    read_baseline,
    write_baseline,
)
from scripts.container_stats import Sampler
from scripts.errors import (
    DeployError,
    GateFailed,
    ParamError,
    ReportError,
    ToolError,
    Unhealthy,
)
from scripts.image import read_record
from scripts.options import EndpointMode, StackOptions, Target, number_var
from scripts.settings import Settings

logger = logging.getLogger(__name__)

LATEST = paths.BENCH_DIR / "latest.json"
LABEL = "io.zeroport.bench"
SWARM_PROJECT = "zpbench"
COMMAND = "doit bench"
CEILING_ENTRYPOINT = ("/usr/bin/python3", "-m", "app.ceiling")
CONTAINER_PORT = 8080
READY_TIMEOUT = 60.0
#: Seconds the service gets after the hold to answer again.
SURVIVAL_TIMEOUT = 15.0
#: File descriptors kept free beyond the connections wrk holds.
FD_HEADROOM = 512
STACK_TIMEOUT = 300.0
#: Seconds a swarm stack gets to disappear after ``docker stack rm``.
REMOVE_TIMEOUT = 90.0

Load = Callable[[], wrk.WrkResult]


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """What ``doit bench`` takes on its command line; short defaults (a few minutes in all)."""

    concurrency: tuple[int, ...] = (1, 16, 64, 256, 1024)
    #: Seconds each measured run lasts.
    duration: float = 5.0
    #: Seconds of load on each server before it is measured.
    warmup: float = 3.0
    #: The concurrency the gate compares at (one of ``concurrency``).
    reference: int = 64
    #: Service/ceiling pairs measured at the reference. The gate drops pairs in which a server
    #: did not get its CPU (something else on the machine took it) and takes the medians of
    #: the rest, so that one disturbed run does not decide it.
    rounds: int = 5
    #: Connections the hold keeps open (0 skips it), and for how long.
    hold: int = 10_000
    hold_duration: float = 10.0
    #: Seconds of sustained load whose memory slope is gated (0 skips it), in runs of
    #: ``soak_round`` seconds, each with fresh connections.
    soak: float = 60.0
    soak_round: float = 5.0
    #: Compare 1 and 2 replicas on swarm (``scaling=0`` skips it).
    scaling: bool = True
    replica_connections: int = 64
    #: The gate's margin for calibrated throughput and peak memory: a change the wrong way
    #: beyond it fails.
    margin: float = 0.10
    #: The margin for calibrated p99. Wider, because the p99 of a 5-second run on two shared
    #: cores measures the neighbours more than the service: over four undisturbed runs of one
    #: image here the service/ceiling ratio at 64 connections was 1.29-1.94 (p50 1.76-1.85,
    #: p90 1.60-1.73, throughput 0.55-0.57). So p90 is gated at ``margin`` and p99 only
    #: against a doubling; on a quiet dedicated machine pass p99_margin=0.1.
    p99_margin: float = 1.0
    #: Record this run as the new baseline instead of gating on the old one.
    accept: bool = False
    #: Loopback ports of the service and (+1) of the ceiling. Not ``port``: doit hands every
    #: variable to every task, and ``port`` is the deployed stack's.
    bench_port: int = 18210
    #: wrk threads (the load generator's share of the cores).
    threads: int = 2
    #: The swarm stack's name for the replica comparison (tests use their own).
    swarm_project: str = SWARM_PROJECT

    @classmethod
    def from_vars(cls, variables: Mapping[str, str]) -> BenchOptions:
        """Validate doit's command-line variables; :class:`ParamError` names a bad one."""
        default = cls()

        def number(name: str, low: float, high: float) -> float:
            return number_var(variables, name, float(getattr(default, name)), low, high)

        options = cls(
            concurrency=_integers(variables, "concurrency", default.concurrency),
            duration=number("duration", 1, 600),
            warmup=number("warmup", 0, 600),
            reference=int(number("reference", 1, 100_000)),
            rounds=int(number("rounds", 1, 21)),
            hold=int(number("hold", 0, 100_000)),
            hold_duration=number("hold_duration", 1, 600),
            soak=number("soak", 0, 86_400),
            soak_round=number("soak_round", 1, 600),
            scaling=number("scaling", 0, 1) == 1,
            replica_connections=int(number("replica_connections", 2, 100_000)),
            margin=number("margin", 0, 10),
            p99_margin=number("p99_margin", 0, 10),
            accept=number("accept", 0, 1) == 1,
            bench_port=int(number("bench_port", 1024, 65534)),
            threads=int(number("threads", 1, 64)),
        )
        if options.reference not in options.concurrency:
            raise ParamError(
                "reference",
                options.reference,
                f"one of the concurrency values {options.concurrency}",
            )
        return options

    def planned_seconds(self) -> float:
        """Seconds of load the run will put on, for the progress bar."""
        pairs = len(self.concurrency) + self.rounds - 1
        seconds = 2 * self.warmup + 2 * self.duration * pairs + self.duration
        if self.hold:
            seconds += self.hold_duration
        seconds += self.soak
        if self.scaling:
            seconds += 2 * (self.warmup + self.duration)
        return seconds


def _integers(variables: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    value = variables.get(name)
    if value is None:
        return default
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and 0 < int(part) <= 100_000 for part in parts):
        raise ParamError(name, value, "a comma-separated list of connection counts, e.g. 1,16,64")
    return tuple(sorted({int(part) for part in parts}))


# ---- one run in progress ---------------------------------------------------------------------


@dataclass
class Run:
    """One bench run in progress: what it measures with, and where its results go."""

    settings: Settings
    docker_engine: DockerClient
    options: BenchOptions
    result: BenchResult
    progress: Progress
    task: TaskID
    started: float = field(default_factory=time.monotonic)
    sampler: Sampler | None = None

    def tick(self, seconds: float) -> None:
        """Advance the progress bar (the sampler calls it while load runs)."""
        self.progress.advance(self.task, seconds)

    def host_wrk(
        self, url: str, connections: int, duration: float, timeout: float | None = None
    ) -> Load:
        """wrk on this host against ``url``."""
        return lambda: wrk.run(
            url,
            env=self.settings.tool_env(),
            connections=connections,
            duration=duration,
            threads=min(self.options.threads, connections),
            timeout=timeout,
        )

    def measure(
        self, label: str, loaded: list[Container], load: Load
    ) -> tuple[wrk.WrkResult, Usage]:
        """Run ``load``; its result and what the ``loaded`` containers used meanwhile."""
        self.progress.update(self.task, description=label)
        start = time.monotonic()
        result = load()
        end = time.monotonic()
        self.result.phases.append(
            (round(start - self.started, 2), round(end - self.started, 2), label)
        )
        usage = self.sampler.usage(loaded, start, end) if self.sampler else Usage()
        return result, usage


# ---- the service and its ceiling, one container each -----------------------------------------


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


def _int(value: object) -> int | None:
    return int(str(value)) if value else None


def limits_of(service: Mapping[str, Any]) -> dict[str, Any]:
    """The limits a compose service sets, for the report."""
    return {
        "cpus": float(service["cpus"]) if service.get("cpus") else None,
        "memory": _int(service.get("mem_limit")),
        "pids": _int(service.get("pids_limit")),
    }


def wait_ready(url: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``url`` until it answers 200; :class:`Unhealthy` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                status = client.get(url).status_code
                if status == 200:
                    return
                last = f"status {status}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
    raise Unhealthy(f"{url} did not answer 200 within {timeout:g} s ({last})")


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-files limit (wrk inherits it) towards ``needed``; the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


@dataclass(frozen=True, kw_only=True)
class Servers:
    """The service and ceiling containers, and the URLs wrk loads them at."""

    containers: dict[str, Container]
    urls: dict[str, str]
    loopback: dict[str, str]
    direct: bool


@contextmanager
def servers(run: Run) -> Iterator[Servers]:
    """Start the service and the ceiling as the compose file runs the app; removed on exit."""
    settings, docker_engine, options = run.settings, run.docker_engine, run.options
    run_id, image = run.result.started, run.result.image
    rendered = stack.render(
        settings, StackOptions(project=SWARM_PROJECT, port=options.bench_port), image
    )
    service = rendered["services"]["app"]
    run.result.limits = limits_of(service)
    for port in (options.bench_port, options.bench_port + 1):
        engine.require_port("127.0.0.1", port)
    network = docker_engine.networks.create(
        f"zpbench-{run_id}", driver="bridge", labels={LABEL: run_id}
    )
    try:
        containers: dict[str, Container] = {}
        loopback: dict[str, str] = {}
        for offset, (name, entrypoint) in enumerate(
            (("service", None), ("ceiling", list(CEILING_ENTRYPOINT)))
        ):
            containers[name] = docker_engine.containers.run(
                **server_kwargs(service, image=image, run_id=run_id),
                name=f"zpbench-{name}-{run_id}",
                entrypoint=entrypoint,
                network=network.name,
                ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", options.bench_port + offset)},
            )
            loopback[name] = f"http://127.0.0.1:{options.bench_port + offset}/"
        for url in loopback.values():
            wait_ready(url)
        urls = _bridge_urls(containers, str(network.name)) if settings.system == "Linux" else None
        yield Servers(
            containers=containers,
            urls=urls or loopback,
            loopback=loopback,
            direct=urls is not None,
        )
    finally:
        remove_run(docker_engine, run_id)


def _bridge_urls(containers: Mapping[str, Container], network: str) -> dict[str, str] | None:
    """Each container's URL at its bridge address, if this host reaches it (Linux does)."""
    urls = {}
    for name, container in containers.items():
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        urls[name] = f"http://{address}:{CONTAINER_PORT}/"
    try:
        wait_ready(urls["service"], timeout=5)
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


def single_container_phase(run: Run) -> None:
    """Warm-up, sweep, loopback point and hold against one service and one ceiling container."""
    options, result = run.options, run.result
    with servers(run) as boxes:
        result.path = (
            "wrk on the host to each container's bridge address (no userland proxy); one point "
            "through the published loopback port"
            if boxes.direct
            else "wrk on the host to the published loopback ports (Docker's userland proxy in "
            "the path)"
        )
        service = boxes.containers["service"]
        with Sampler(list(boxes.containers.values()), on_tick=run.tick) as sampler:
            run.sampler = sampler
            if options.warmup:
                for name, box in boxes.containers.items():
                    load = run.host_wrk(boxes.urls[name], options.reference, options.warmup)
                    run.measure(f"warm-up {name}", [box], load)
            for connections in options.concurrency:
                rounds = options.rounds if connections == options.reference else 1
                pairs = [sweep_pair(run, boxes, connections) for _ in range(rounds)]
                if connections == options.reference:
                    result.rounds = [Round(service=s, ceiling=c) for s, c in pairs]
                result.points += median_pair(pairs)
            if boxes.direct:
                load = run.host_wrk(boxes.loopback["service"], options.reference, options.duration)
                measured = run.measure(
                    f"service via loopback c={options.reference}", [service], load
                )
                note = "through 127.0.0.1 and Docker's userland proxy, as in local mode"
                result.points.append(Point.from_wrk("service-loopback", *measured, note=note))
            if options.soak:
                result.soak = soak(run, boxes.urls["service"], service, sampler)
            if options.hold:
                result.hold, result.survival = hold(run, boxes.urls["service"], service)
            run.sampler = None
        result.timeline = sampler.timeline(service, run.started)


def sweep_pair(run: Run, boxes: Servers, connections: int) -> tuple[Point, Point]:
    """The service, then the ceiling, at ``connections``: close in time, so on the same machine."""
    points = []
    for name in ("service", "ceiling"):
        load = run.host_wrk(boxes.urls[name], connections, run.options.duration)
        measured = run.measure(f"{name} c={connections}", [boxes.containers[name]], load)
        points.append(Point.from_wrk(name, *measured))
    return points[0], points[1]


def median_pair(pairs: list[tuple[Point, Point]]) -> tuple[Point, Point]:
    """The pair whose service/ceiling throughput ratio is the median of ``pairs``."""
    ordered = sorted(pairs, key=lambda pair: pair[0].rps / pair[1].rps if pair[1].rps else 0.0)
    return ordered[len(ordered) // 2]


def soak(run: Run, url: str, box: Container, sampler: Sampler) -> Soak:
    """Load the service for ``options.soak`` seconds in runs with fresh connections each."""
    options = run.options
    rounds = max(1, round(options.soak / options.soak_round))
    points = []
    start = time.monotonic()
    for number in range(rounds):
        load = run.host_wrk(url, options.reference, options.soak_round)
        points.append(
            Point.from_wrk(
                "soak",
                *run.measure(f"soak {number + 1}/{rounds} c={options.reference}", [box], load),
            )
        )
    ident = str(box.id)
    samples = [
        (round(sample.at - start, 2), sample.rss)
        for sample in list(sampler.samples)
        if sample.container == ident and sample.at >= start
    ]
    return Soak(rounds=points, samples=samples, settle=options.soak_round)


def hold(run: Run, url: str, box: Container) -> tuple[Point, Survival]:
    """Hold ``options.hold`` busy connections on the service for ``hold_duration`` seconds;
    the run, and whether the container came through it (running, unrestarted, answering)."""
    options = run.options
    wanted = options.hold + FD_HEADROOM
    limit = raise_fd_limit(wanted)
    connections = options.hold if limit >= wanted else max(options.threads, limit - FD_HEADROOM)
    # A generous timeout: at this concurrency an answer takes seconds, and a slow answer is
    # still an answer; what the hold asks is whether the service keeps serving, and survives.
    load = run.host_wrk(url, connections, options.hold_duration, timeout=options.hold_duration)
    measured = run.measure(f"hold c={connections}", [box], load)
    survival = survived(box, url)
    note = (
        f"{connections} connections held for {options.hold_duration:g} s (open-files limit "
        f"{limit}); the service container {survival.describe()}"
    )
    if connections < options.hold:
        note += f"; {options.hold} wanted, but the hard open-files limit is {limit}"
    return Point.from_wrk("hold", *measured, note=note), survival


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


# ---- replicas on swarm -----------------------------------------------------------------------


def deploy_swarm(
    settings: Settings,
    docker_engine: DockerClient,
    *,
    project: str,
    image: str,
    replicas: int,
    port: int,
) -> StackOptions:
    """The stack on swarm with ``replicas`` app replicas, dnsrr (this kernel has no IPVS)."""
    options = StackOptions(
        project=project,
        target=Target.SWARM,
        replicas=replicas,
        endpoint_mode=EndpointMode.DNSRR,
        port=port,
    )
    stack.ensure_swarm(docker_engine)
    stack_file = paths.BENCH_DIR / f"{project}.swarm.yaml"
    stack_file.parent.mkdir(parents=True, exist_ok=True)
    rendered = swarm.render(stack.render(settings, options, image), options)
    stack_file.write_text(yaml.safe_dump(rendered, sort_keys=True))
    env = settings.tool_env()
    docker_cli = tools.which("docker", env)
    try:
        tools.run(
            [docker_cli, "stack", "deploy", "--compose-file", str(stack_file), project],
            env=env,
            timeout=STACK_TIMEOUT,
        )
    except ToolError as exc:
        raise DeployError(f"the bench's swarm stack did not deploy: {exc}") from None
    stack.wait_service(docker_engine, f"{project}_app", image, options)
    return options


def remove_swarm(settings: Settings, docker_engine: DockerClient, project: str) -> None:
    """Remove the bench's swarm stack and wait until its containers and network are gone."""
    env = settings.tool_env()
    docker_cli = tools.which("docker", env)
    tools.run([docker_cli, "stack", "rm", project], env=env, timeout=STACK_TIMEOUT, check=False)
    filters: dict[str, Any] = {"label": f"com.docker.stack.namespace={project}"}
    deadline = time.monotonic() + REMOVE_TIMEOUT
    while time.monotonic() < deadline:
        containers = docker_engine.containers.list(all=True, filters=filters)
        if not containers and not docker_engine.networks.list(filters=filters):
            return
        time.sleep(0.5)
    logger.warning("the swarm stack %s is still being removed after %g s", project, REMOVE_TIMEOUT)


def replica_phase(run: Run) -> None:
    """The same load against 1 and then 2 swarm replicas, from a wrk container on the overlay."""
    settings, docker_engine, options = run.settings, run.docker_engine, run.options
    project = options.swarm_project
    generator = loadgen.ensure_image(settings, docker_engine)
    network = f"{project}_local"
    threads = max(2, options.threads)  # at least one thread per replica: see spread.lua

    def in_network(duration: float) -> Load:
        return lambda: loadgen.run_wrk(
            docker_engine,
            generator,
            network=network,
            url=f"http://app:{CONTAINER_PORT}/",
            connections=options.replica_connections,
            duration=duration,
            threads=threads,
        )

    try:
        for replicas in (1, 2):
            run.progress.update(run.task, description=f"swarm: {replicas} replica(s) starting")
            deploy_swarm(
                settings,
                docker_engine,
                project=project,
                image=run.result.image,
                replicas=replicas,
                port=options.bench_port,
            )
            tasks = docker_engine.containers.list(
                filters={"label": f"com.docker.swarm.service.name={project}_app"}
            )
            label = f"{replicas} replica(s) c={options.replica_connections}"
            with Sampler(tasks, on_tick=run.tick) as sampler:
                run.sampler = sampler
                if options.warmup:
                    run.measure(f"warm-up {label}", tasks, in_network(options.warmup))
                measured = run.measure(label, tasks, in_network(options.duration))
                run.sampler = None
            note = (
                "Swarm, endpoint_mode=dnsrr (this kernel has no IPVS, so the VIP does not route); "
                f"wrk with {threads} threads spread over the replicas' addresses from a container "
                f"on {network}. Each replica is limited to {run.result.limits.get('cpus')} CPU, "
                f"and the replicas and wrk share the machine's {os.cpu_count()} cores."
            )
            run.result.replicas.append(Point.from_wrk(f"replicas-{replicas}", *measured, note=note))
    finally:
        remove_swarm(settings, docker_engine, project)


# ---- the step --------------------------------------------------------------------------------


def measure(
    settings: Settings,
    docker_engine: DockerClient,
    options: BenchOptions,
    *,
    image: str,
    image_id: str,
) -> BenchResult:
    """Every phase of the bench against ``image``, with a progress bar; the (ungated) result."""
    tools.which("wrk", settings.tool_env())  # ToolMissing: apt-get install wrk
    result = BenchResult(
        started=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        image=image,
        image_id=image_id,
        machine=machine_profile(),
        limits={},
        path="",
        reference=options.reference,
        settings={
            name: list(value) if isinstance(value, tuple) else value
            for name, value in vars(options).items()
            if name not in {"accept", "bench_port", "swarm_project"}
        },
    )
    columns = (TextColumn("{task.description:<32}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("starting", total=options.planned_seconds())
        run = Run(
            settings=settings,
            docker_engine=docker_engine,
            options=options,
            result=result,
            progress=progress,
            task=task,
        )
        single_container_phase(run)
        if options.scaling:
            replica_phase(run)
        progress.update(task, completed=options.planned_seconds(), description="done")
    return result


def machine_profile() -> dict[str, Any]:
    """What the figures depend on about this machine (see bench_report.machine_key)."""
    cores = os.cpu_count()
    profile: dict[str, Any] = {
        "cpus": cores,
        "system": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30)),
        "shared": f"the servers and the load generator (wrk) share these {cores} cores",
    }
    profile["key"] = machine_key(profile)
    return profile


def cpu_model() -> str:
    """The CPU's model name: the platform's, or on Linux the first ``model name`` it lists."""
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if not model and cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    return model or platform.machine()


def finish(
    result: BenchResult,
    options: BenchOptions,
    *,
    out_dir: Path = paths.BENCH_DIR,
    baseline_path: Path | None = None,
) -> None:
    """Gate (or accept); write ``<timestamp>.json/.md/.png`` and latest.json; fail on regression.

    ``baseline_path`` defaults to this machine's baseline (bench_report.baseline_for). When it
    does not exist yet, this run becomes it, if it passes its absolute checks.
    """
    baseline_path = baseline_path or baseline_for(result.machine)
    stem = out_dir / result.started
    result.write(stem.with_suffix(".json"))  # first: nothing measured is lost if the gate errs
    try:
        baseline = read_baseline(baseline_path)
    except ReportError:
        if not options.accept:
            raise
        logger.warning("%s is unreadable: accept=1 replaces it", baseline_path)
        baseline = None
    margins = Margins(margin=options.margin, p99=options.p99_margin)
    result.gate = gate(result, baseline, margins, accept=options.accept)
    first = baseline is None and not options.accept and result.gate["ok"]
    if first:
        result.gate["first_on_machine"] = str(baseline_path)
    result.write(stem.with_suffix(".json"))
    stem.with_suffix(".md").write_text(markdown(result, command(options)))
    plot(result, stem.with_suffix(".png"))
    result.write(out_dir / LATEST.name)
    figures = result.figures()
    logger.info(
        "bench: at %d connections the service does %.2f of the ceiling's requests/s, its p99 is "
        "%.2f x the ceiling's; steady memory %.1f MiB; report %s",
        result.reference,
        figures.fraction,
        figures.p99_ratio,
        figures.memory / MIB,
        stem.with_suffix(".md"),
    )
    if options.accept and result.gate["disturbed"]:
        raise GateFailed(
            f"bench not recorded as the baseline: {result.gate['disturbed']}; rerun when the "
            "machine is quieter"
        )
    enforce(result.gate, baseline_path)
    if options.accept or first:
        baseline_path.parent.mkdir(parents=True, exist_ok=True)
        write_baseline(result, baseline_path)
    if first:
        logger.info(
            "bench: first run on this machine (%s): recorded as its baseline in %s; later "
            "runs are gated against it",
            result.machine.get("key"),
            baseline_path,
        )
    elif options.accept:
        logger.info("bench: recorded as the new baseline in %s", baseline_path)


def command(options: BenchOptions) -> str:
    """The command line that repeats this run (the variables that differ from the defaults)."""
    default = BenchOptions()
    changed = []
    for name, value in vars(options).items():
        if name in {"accept", "swarm_project"} or value == getattr(default, name):
            continue
        if isinstance(value, tuple):
            shown = ",".join(map(str, value))
        elif isinstance(value, bool):
            shown = str(int(value))
        elif isinstance(value, float):
            shown = f"{value:g}"
        else:
            shown = str(value)
        changed.append(f"{name}={shown}")
    return " ".join([COMMAND, *changed])


def step(variables: dict[str, str]) -> None:
    """doit bench: measure, write build/bench/<timestamp>.{json,md,png}, gate or accept."""
    options = BenchOptions.from_vars(variables)
    settings = Settings.from_env()
    record = read_record()
    docker_engine = engine.client(settings)
    result = measure(settings, docker_engine, options, image=record.tag, image_id=record.id)
    finish(result, options)
