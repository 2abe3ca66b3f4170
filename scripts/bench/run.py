"""A bench run's phases, in order, and ``doit bench``'s step.

1. The targets side by side (scripts.bench.servers), each warmed up; then the concurrency
   sweep (default 1, 16, 64, 256, 1024), the targets one after the other at each point, and
   ``rounds`` rounds at the reference concurrency (scripts.bench.rounds).
2. One point through the published loopback port: what local mode's users meet, with
   Docker's userland proxy in the path.
3. A soak: sustained load on the service at the reference concurrency, as back-to-back wrk
   runs that each open fresh connections (clients keep arriving and leaving, as in
   production); the slope of its resident memory is gated.
4. A busy hold (wrk keeps 10,000 connections asking) and an idle hold (10,000 keep-alive
   connections that asked once, then say nothing: scripts.bench.idle); after each the
   service must still run, unrestarted, and answer.
5. Workers: the service with APP_WORKERS=N in a container with N CPUs, for each N.
6. Replicas: the stack on swarm with 1, then 2 app replicas, loaded from a wrk container on
   the stack's overlay network (swarm cannot publish on loopback alone; this kernel has no
   IPVS, so the stack runs dnsrr and wrk spreads its threads over the replicas' addresses).

The containers' CPU and memory are sampled throughout (scripts.bench.stats). Every run is
bounded in time; all load goes to containers the run starts. The servers and the load
generator share the machine's cores: every report says so.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil
import yaml
from docker import DockerClient
from docker.models.containers import Container
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from scripts import deploy
from scripts.bench import idle, loadgen, servers, wrk
from scripts.bench.gate import (
    SCALING_FLOOR,
    Margins,
    baseline_for,
    enforce,
    gate,
    machine_key,
    read_baseline,
    write_baseline,
)
from scripts.bench.options import SERVICE, BenchOptions
from scripts.bench.render import command, markdown, plot
from scripts.bench.report import MIB, BenchResult, Hold, Point, Soak, Usage
from scripts.bench.rounds import measure_rounds, median_round
from scripts.bench.servers import Servers
from scripts.bench.stats import Sampler
from scripts.core import engine, paths, proc
from scripts.core.errors import DeployError, GateFailed, ReportError, ToolError
from scripts.core.options import DeployTarget, EndpointMode, StackOptions
from scripts.core.poll import poll_until
from scripts.core.records import read_record
from scripts.core.settings import Settings

logger = logging.getLogger(__name__)

LATEST = paths.BENCH_DIR / "latest.json"
#: File descriptors kept free beyond the connections a hold opens.
FD_HEADROOM = 512
STACK_TIMEOUT = 300.0
#: Seconds a swarm stack gets to disappear after ``docker stack rm``.
REMOVE_TIMEOUT = 90.0

Load = Callable[[], wrk.WrkResult]
T = TypeVar("T")


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

    def host_wrk(self, url: str, connections: int, duration: float) -> Load:
        """wrk on this host against ``url``.

        wrk waits for an answer as long as the run lasts, not its default 2 s: a slow answer
        is an answer (its latency is measured), and at hundreds of connections on shared cores
        a connection whose SYN overflowed the listen queue is retried by the kernel after 1 s
        and 3 s, for any server (the ceiling too). A socket error is then a refusal, a reset
        or a request unanswered for the whole run.
        """
        load = wrk.WrkLoad(
            url=url,
            connections=connections,
            duration=duration,
            threads=min(self.options.threads, connections),
            timeout=duration,
        )
        return lambda: wrk.run(load, env=self.settings.tool_env())

    def measure(
        self, label: str, loaded: list[Container], work: Callable[[], T]
    ) -> tuple[T, Usage]:
        """Run ``work`` (a load) as a phase of the timeline; its result and what the
        ``loaded`` containers used meanwhile."""
        self.progress.update(self.task, description=label)
        start = time.monotonic()
        outcome = work()
        end = time.monotonic()
        self.result.phases.append(
            (round(start - self.started, 2), round(end - self.started, 2), label)
        )
        usage = self.sampler.usage(loaded, start, end) if self.sampler else Usage()
        return outcome, usage

    def point(self, name: str, boxes: Servers, connections: int, duration: float) -> Point:
        """``name`` loaded at ``connections`` for ``duration`` seconds."""
        load = self.host_wrk(boxes.urls[name], connections, duration)
        return Point.from_wrk(
            name, *self.measure(f"{name} c={connections}", [boxes.containers[name]], load)
        )


# ---- the servers side by side ---------------------------------------------------------------


def single_container_phase(run: Run) -> None:
    """Warm-up, sweep, loopback point, soak and holds against one container per target."""
    options, result = run.options, run.result
    service_spec = servers.app_service(run.settings, result.image)
    result.limits = servers.limits_of(service_spec)
    with servers.servers(
        run.settings,
        run.docker_engine,
        targets=options.targets,
        image=result.image,
        run_id=result.started,
        first_port=options.bench_port,
        service=service_spec,
    ) as boxes:
        result.loop = boxes.loop
        result.path = (
            "wrk on the host to each container's bridge address (no userland proxy); one point "
            "through the published loopback port"
            if boxes.direct
            else "wrk on the host to the published loopback ports (Docker's userland proxy in "
            "the path)"
        )
        service = boxes.containers[SERVICE]
        with Sampler(list(boxes.containers.values()), on_tick=run.tick) as sampler:
            run.sampler = sampler
            if options.warmup:
                for name, box in boxes.containers.items():
                    load = run.host_wrk(boxes.urls[name], options.reference, options.warmup)
                    run.measure(f"warm-up {name}", [box], load)
            sweep(run, boxes)
            if boxes.direct:
                load = run.host_wrk(boxes.loopback[SERVICE], options.reference, options.duration)
                measured = run.measure(
                    f"service via loopback c={options.reference}", [service], load
                )
                note = "through 127.0.0.1 and Docker's userland proxy, as in local mode"
                result.points.append(Point.from_wrk("service-loopback", *measured, note=note))
            if options.soak:
                result.soak = soak(run, boxes.urls[SERVICE], service, sampler)
            if options.hold:
                result.holds.append(busy_hold(run, boxes.urls[SERVICE], service))
            if options.idle_hold:
                result.holds.append(idle_hold(run, boxes.urls[SERVICE], service))
            run.sampler = None
        result.timeline = sampler.timeline(service, run.started)


def sweep(run: Run, boxes: Servers) -> None:
    """Every target at every concurrency; ``rounds`` rounds at the reference."""
    options, result = run.options, run.result
    names = list(options.targets)
    for connections in options.concurrency:
        count = options.rounds if connections == options.reference else 1
        rounds = measure_rounds(names, count, functools.partial(_point_at, run, boxes, connections))
        if connections == options.reference:
            result.rounds = rounds
        shown = median_round(rounds, names[0], names[-1])
        result.points += [shown.points[name] for name in names]


def _point_at(run: Run, boxes: Servers, connections: int, name: str) -> Point:
    return run.point(name, boxes, connections, run.options.duration)


def soak(run: Run, url: str, box: Container, sampler: Sampler) -> Soak:
    """Load the service for ``options.soak`` seconds in runs with fresh connections each."""
    options = run.options
    rounds = max(1, round(options.soak / options.soak_round))
    points = []
    start = time.monotonic()
    for number in range(rounds):
        load = run.host_wrk(url, options.reference, options.soak_round)
        label = f"soak {number + 1}/{rounds} c={options.reference}"
        points.append(Point.from_wrk("soak", *run.measure(label, [box], load)))
    ident = str(box.id)
    samples = [
        (round(sample.at - start, 2), sample.rss)
        for sample in list(sampler.samples)
        if sample.container == ident and sample.at >= start
    ]
    return Soak(rounds=points, samples=samples, settle=options.soak_round)


def busy_hold(run: Run, url: str, box: Container) -> Hold:
    """``options.hold`` connections that keep asking, for ``hold_duration`` seconds."""
    seconds = run.options.hold_duration

    def load(connections: int) -> tuple[int, int, str]:
        result = run.host_wrk(url, connections, seconds)()
        return result.requests, result.failures, ""

    return _hold(run, url, box, kind="busy", wanted=run.options.hold, seconds=seconds, load=load)


def idle_hold(run: Run, url: str, box: Container) -> Hold:
    """``options.idle_hold`` keep-alive connections that asked once, idle ``idle_duration`` s."""
    seconds = run.options.idle_duration
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")

    def load(connections: int) -> tuple[int, int, str]:
        outcome = idle.hold(host, int(port), connections=connections, seconds=seconds)
        return outcome.held, outcome.errors, f"opened and asked in {outcome.ramp:.1f} s"

    return _hold(
        run, url, box, kind="idle", wanted=run.options.idle_hold, seconds=seconds, load=load
    )


def _hold(
    run: Run,
    url: str,
    box: Container,
    *,
    kind: str,
    wanted: int,
    seconds: float,
    load: Callable[[int], tuple[int, int, str]],
) -> Hold:
    """``wanted`` connections (fewer if the open-files limit says so) held by ``load``, which
    answers (answered, errors, a note); then whether the service survived."""
    limit = servers.raise_fd_limit(wanted + FD_HEADROOM)
    connections = wanted if limit >= wanted + FD_HEADROOM else max(1, limit - FD_HEADROOM)
    (answered, errors, note), usage = run.measure(
        f"{kind} hold c={connections}", [box], lambda: load(connections)
    )
    return Hold(
        kind=kind,
        connections=connections,
        duration=seconds,
        answered=answered,
        errors=errors,
        mem_peak=usage.mem_peak,
        mem_steady=usage.mem_steady,
        survival=servers.survived(box, url),
        note="; ".join(filter(None, [note, _limited(wanted, connections, limit)])),
    )


def _limited(wanted: int, got: int, limit: int) -> str:
    if got >= wanted:
        return ""
    return f"{wanted} wanted, but the hard open-files limit is {limit}"


# ---- workers and replicas ---------------------------------------------------------------------


def scaling_phase(
    run: Run, what: str, points: list[Point], counts: Sequence[int], measure: Callable[[int], None]
) -> None:
    """``measure`` each count; a 1 -> 2 efficiency below the floor measures both once more.

    Each is one 10-second run that a neighbour on the shared cores can slow (replicas once
    scaled at 0.59 where fifteen other runs gave 0.71-0.86). The gate judges the later pair;
    both stay in the report. A real loss of scaling misses twice.
    """
    for attempt in (1, 2):
        for count in counts:
            measure(count)
        efficiency = run.result.efficiency(points)
        if efficiency is None or efficiency >= SCALING_FLOOR or attempt == 2:
            return
        run.result.notes.append(
            f"1 -> 2 {what} scaled at {efficiency:.2f}, below {SCALING_FLOOR:g}: both were "
            "measured once more, and the gate judges the second measurement"
        )


def workers_phase(run: Run) -> None:
    """The service with APP_WORKERS=N in a container of N CPUs, for each N in ``workers``."""
    options, result = run.options, run.result
    spec = servers.app_service(run.settings, result.image)

    def measure(count: int) -> None:
        run_id = f"{result.started}-w{count}"
        network = run.docker_engine.networks.create(
            f"zpbench-{run_id}", driver="bridge", labels={servers.LABEL: run_id}
        )
        try:
            box = servers.start(
                run.docker_engine,
                SERVICE,
                service=spec,
                image=result.image,
                run_id=run_id,
                network=str(network.name),
                port=options.bench_port,
                cpus=float(count),
                environment={"APP_WORKERS": str(count)},
            )
            url = f"http://127.0.0.1:{options.bench_port}/"
            servers.wait_ready(url)
            if run.settings.system == "Linux":  # past Docker's userland proxy, as the sweep
                url = servers.bridge_url(box, str(network.name))
            with Sampler([box], on_tick=run.tick) as sampler:
                run.sampler = sampler
                label = f"{count} worker(s) c={options.reference}"
                if options.warmup:
                    warm = run.host_wrk(url, options.reference, options.warmup)
                    run.measure(f"warm-up {label}", [box], warm)
                load = run.host_wrk(url, options.reference, options.duration)
                measured = run.measure(label, [box], load)
                run.sampler = None
            note = (
                f"APP_WORKERS={count} in a container limited to {count} CPU(s); wrk shares the "
                f"machine's {os.cpu_count()} cores with it"
            )
            result.workers.append(Point.from_wrk(f"workers-{count}", *measured, note=note))
        finally:
            servers.remove_run(run.docker_engine, run_id)

    scaling_phase(run, "workers", result.workers, options.workers, measure)


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
        target=DeployTarget.SWARM,
        replicas=replicas,
        endpoint_mode=EndpointMode.DNSRR,
        port=port,
    )
    deploy.ensure_swarm(docker_engine)
    stack_file = paths.BENCH_DIR / f"{project}.swarm.yaml"
    stack_file.parent.mkdir(parents=True, exist_ok=True)
    rendered = deploy.render_swarm(deploy.render(settings, options, image), options)
    stack_file.write_text(yaml.safe_dump(rendered, sort_keys=True))
    env = settings.tool_env()
    docker_cli = proc.which("docker", env)
    try:
        proc.run(
            [docker_cli, "stack", "deploy", "--compose-file", str(stack_file), project],
            env=env,
            timeout=STACK_TIMEOUT,
        )
    except ToolError as exc:
        raise DeployError(f"the bench's swarm stack did not deploy: {exc}") from None
    deploy.wait_service(docker_engine, f"{project}_app", image, options)
    return options


def remove_swarm(settings: Settings, docker_engine: DockerClient, project: str) -> None:
    """Remove the bench's swarm stack and wait until its containers and network are gone."""
    env = settings.tool_env()
    docker_cli = proc.which("docker", env)
    proc.run([docker_cli, "stack", "rm", project], env=env, timeout=STACK_TIMEOUT, check=False)
    filters: dict[str, Any] = {"label": f"com.docker.stack.namespace={project}"}

    def gone() -> bool:
        containers = docker_engine.containers.list(all=True, filters=filters)
        return not containers and not docker_engine.networks.list(filters=filters)

    if not poll_until(gone, timeout=REMOVE_TIMEOUT, interval=0.5):
        logger.warning(
            "the swarm stack %s is still being removed after %g s", project, REMOVE_TIMEOUT
        )


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
            url=f"http://app:{servers.CONTAINER_PORT}/",
            connections=options.replica_connections,
            duration=duration,
            threads=threads,
        )

    def measure(replicas: int) -> None:
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

    try:
        scaling_phase(run, "replicas", run.result.replicas, (1, 2), measure)
    finally:
        remove_swarm(settings, docker_engine, project)


# ---- the run and the step ---------------------------------------------------------------------


def machine_profile() -> dict[str, Any]:
    """What the figures depend on about this machine (see gate.machine_key)."""
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


def measure(
    settings: Settings,
    docker_engine: DockerClient,
    options: BenchOptions,
    *,
    image: str,
    image_id: str,
) -> BenchResult:
    """Every phase the options ask for against ``image``, with a progress bar; the result."""
    proc.which("wrk", settings.tool_env())  # ToolMissing: apt-get install wrk
    result = BenchResult(
        started=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        image=image,
        image_id=image_id,
        machine=machine_profile(),
        limits={},
        path="",
        reference=options.reference,
        targets=list(options.targets),
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
        if options.workers:
            workers_phase(run)
        if options.scaling:
            replica_phase(run)
        progress.update(task, completed=options.planned_seconds(), description="done")
    return result


def finish(
    result: BenchResult,
    options: BenchOptions,
    *,
    out_dir: Path = paths.BENCH_DIR,
    baseline_path: Path | None = None,
) -> None:
    """Gate (or accept); write ``<timestamp>.json/.md/.png`` and latest.json; fail on regression.

    ``baseline_path`` defaults to this machine's baseline (gate.baseline_for). When it does not
    exist yet, this run becomes it, if it passes its checks.
    """
    baseline_path = baseline_path or baseline_for(result.machine)
    stem = out_dir / result.started
    result.write(stem.with_suffix(".json"))  # first: nothing measured is lost if the gate errs
    try:
        baseline = read_baseline(baseline_path) if options.compare else None
    except ReportError:
        if not options.accept:
            raise
        logger.warning("%s is unreadable: accept=1 replaces it", baseline_path)
        baseline = None
    margins = Margins(margin=options.margin, p99=options.p99_margin, memory=options.memory_margin)
    result.gate = gate(result, baseline, margins, accept=options.accept)
    if not options.compare:
        result.gate["not_compared"] = "compare=0: only the checks above gate this run"
    first = options.compare and baseline is None and not options.accept and result.gate["ok"]
    if first:
        result.gate["first_on_machine"] = str(baseline_path)
    if options.accept:
        result.gate["accepted_into"] = str(baseline_path)
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


def step(variables: Mapping[str, str]) -> None:
    """doit bench: measure, write build/bench/<timestamp>.{json,md,png}, gate or accept."""
    options = BenchOptions.from_vars(variables)
    settings = Settings.from_env()
    record = read_record()
    docker_engine = engine.client(settings)
    result = measure(settings, docker_engine, options, image=record.tag, image_id=record.id)
    finish(result, options)
