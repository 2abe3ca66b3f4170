"""Planted bench results for the tests: runs whose figures the tests choose."""

from __future__ import annotations

from scripts.bench.gate import Baseline
from scripts.bench.report import MIB, BenchResult, Hold, Point, Round, Soak, Survival

ALIVE = Survival(status="running", restarts=0, oom_killed=False, answering=True)


def point(
    target: str,
    connections: int,
    rps: float,
    p99: float,
    mem: int = 30 * MIB,
    *,
    p90: float | None = None,
    cpu: float | None = 0.9,
    duration: float = 5.0,
) -> Point:
    return Point(
        target=target,
        connections=connections,
        duration=duration,
        rps=rps,
        requests=int(rps * duration),
        p50_ms=p99 / 3,
        p90_ms=p99 / 2 if p90 is None else p90,
        p99_ms=p99,
        max_ms=p99 * 1.5,
        cpu_cores=cpu,
        mem_peak=mem + 8 * MIB,  # a health check passing through the container
        rss_peak=mem - MIB,
        mem_steady=mem,
    )


def round_(
    service: float,
    ceiling: float,
    service_p99: float,
    ceiling_p99: float,
    *,
    cpu: float = 0.95,
    mem: int = 30 * MIB,
    service_p90: float | None = None,
    stock: float | None = None,
) -> Round:
    """One round at 64 connections in which the service used ``cpu`` cores (the rest 0.97)."""
    points = {
        "service": point("service", 64, service, service_p99, mem, p90=service_p90, cpu=cpu),
        "ceiling": point("ceiling", 64, ceiling, ceiling_p99, 20 * MIB, p90=10.0, cpu=0.97),
    }
    if stock is not None:
        points["stock"] = point("stock", 64, stock, 60.0, 70 * MIB, cpu=0.97)
    return Round(points=points)


def result(
    *,
    service_rps: float = 2000.0,
    p99: float = 40.0,
    p90: float = 20.0,
    mem: int = 30 * MIB,
    ceiling_rps: float = 4000.0,
) -> BenchResult:
    """A run at 1 and 64 connections: the service at ``service_rps`` against a 4000 rps ceiling."""
    bench = BenchResult(
        started="20260101T000000Z",
        image="zeroport:abc",
        image_id="sha256:abc",
        machine={"cpus": 2, "system": "Linux x86_64", "cpu": "AMD EPYC", "memory_gib": 24},
        limits={"cpus": 1.0, "memory": 384 * MIB, "pids": 64},
        path="bridge",
        reference=64,
        loop="uvloop",
    )
    for connections in (1, 64):
        bench.points.append(point("service", connections, service_rps, p99, mem))
        bench.points.append(point("ceiling", connections, ceiling_rps, 20.0, 20 * MIB))
    bench.rounds = [round_(service_rps, ceiling_rps, p99, 20.0, mem=mem, service_p90=p90)]
    bench.replicas = [point("replicas-1", 64, 1500, 50), point("replicas-2", 64, 2400, 45)]
    return bench


def hold(kind: str = "busy", survival: Survival = ALIVE, **overrides: object) -> Hold:
    values: dict[str, object] = {
        "kind": kind,
        "connections": 10_000,
        "duration": 10.0,
        "answered": 9000,
        "errors": 4000 if kind == "busy" else 0,
        "mem_peak": 110 * MIB,
        "mem_steady": 100 * MIB,
        "survival": survival,
        **overrides,
    }
    return Hold(**values)  # type: ignore[arg-type]


def soak(climb_per_minute_mib: float, *, seconds: int = 60, noise: int = 0) -> Soak:
    """A soak of 5-second runs whose resident memory climbs steadily, sampled each second."""
    rounds = [point("soak", 64, 2000, 40) for _ in range(seconds // 5)]
    samples = [
        (float(t), 40 * MIB + int(climb_per_minute_mib * MIB * t / 60) + (noise if t % 2 else 0))
        for t in range(seconds)
    ]
    return Soak(rounds=rounds, samples=samples, settle=5.0)


def baseline_of(bench: BenchResult) -> Baseline:
    return Baseline(
        figures=bench.figures(), recorded=bench.started, image=bench.image, machine=bench.machine
    )
