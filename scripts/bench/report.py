"""What one bench run measured: the model ``build/bench/<timestamp>.json`` holds.

A :class:`Point` is one wrk run against one server; a :class:`Round` is every target measured
once at the reference concurrency, one after the other; the :class:`BenchResult` holds the
sweep, the rounds, the holds, the soak, the worker and replica comparisons, and the derived
:class:`Figures` that the gate (:mod:`scripts.bench.gate`) compares.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.bench.options import CEILING, SERVICE
from scripts.bench.wrk import WrkResult
from scripts.core.errors import ReportError
from scripts.core.records import read_json, write_json

MIB = 1 << 20
#: Share of its CPU limit a saturated server must get for a round to count. Under load the
#: servers are CPU-bound (0.94-0.99 of their 1 CPU on a quiet machine here); one that got less
#: was held back by something else on the machine, and the round says nothing.
CPU_FLOOR = 0.8
#: Undisturbed rounds a run needs (of the rounds measured) to be judged.
MIN_ROUNDS = 2


@dataclass(frozen=True, kw_only=True)
class Usage:
    """What the server's container(s) used during one run."""

    #: Mean CPU, in cores (1.0 = one core busy all the time), summed over containers.
    cpu_cores: float | None = None
    #: Highest working set (usage less inactive page cache, as ``docker stats``), in bytes.
    mem_peak: int | None = None
    #: Highest resident anonymous memory (cgroup ``rss``), in bytes.
    rss_peak: int | None = None
    #: Median working set once the run settled (see stats.SETTLE), in bytes.
    mem_steady: int | None = None


@dataclass(frozen=True, kw_only=True)
class Point:
    """One measured run: which server, how many connections, and what came out."""

    #: ``service``, ``ceiling``, ``stock``, ``service-loopback``, ``hold``, ``soak``,
    #: ``workers-N``, ``replicas-N``.
    target: str
    connections: int
    duration: float
    rps: float
    requests: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float
    non_2xx: int = 0
    socket_errors: int = 0
    #: Of the socket errors, requests wrk stopped waiting for (its timeout: the run's length).
    timeouts: int = 0
    cpu_cores: float | None = None
    mem_peak: int | None = None
    rss_peak: int | None = None
    mem_steady: int | None = None
    note: str = ""

    @classmethod
    def from_wrk(cls, target: str, result: WrkResult, usage: Usage, note: str = "") -> Point:
        """A point from wrk's result and the container usage sampled meanwhile."""

        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds * 1000, 3)

        return cls(
            target=target,
            connections=result.connections,
            duration=result.duration,
            rps=round(result.requests_per_second, 1),
            requests=result.requests,
            p50_ms=ms(result.p50),
            p90_ms=ms(result.latency_percentiles.get(90.0)),
            p99_ms=ms(result.p99),
            max_ms=ms(result.latency_max) or 0.0,
            non_2xx=result.non_2xx_3xx,
            socket_errors=result.socket_errors.total,
            timeouts=result.socket_errors.timeout,
            cpu_cores=None if usage.cpu_cores is None else round(usage.cpu_cores, 3),
            mem_peak=usage.mem_peak,
            rss_peak=usage.rss_peak,
            mem_steady=usage.mem_steady,
            note=note,
        )

    @property
    def cpu_per_request(self) -> float | None:
        """CPU seconds the server spent per answered request (steadier than rps when shared)."""
        if self.cpu_cores is None or not self.requests:
            return None
        return self.cpu_cores * self.duration / self.requests

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Point:
        """Read a point written by ``asdict``."""
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class Round:
    """Every target once at the reference concurrency, measured one after the other."""

    points: dict[str, Point]

    def ratio(self, figure: str, numerator: str, denominator: str) -> float | None:
        """``figure`` (``rps``, ``p90_ms``, ``p99_ms``, ``cpu_per_request``) of one target
        over another's in this round."""
        top, bottom = self.points.get(numerator), self.points.get(denominator)
        if top is None or bottom is None:
            return None
        over, under = getattr(top, figure), getattr(bottom, figure)
        return over / under if over is not None and under else None

    def undisturbed(self, cpu_limit: float | None) -> bool:
        """True when every server used at least CPU_FLOOR of its CPU limit (or no limit)."""
        if cpu_limit is None:
            return True
        return all(
            point.cpu_cores is not None and point.cpu_cores >= CPU_FLOOR * cpu_limit
            for point in self.points.values()
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Round:
        """Read a round written by ``asdict``."""
        return cls(points={name: Point.from_json(p) for name, p in data["points"].items()})


@dataclass(frozen=True, kw_only=True)
class Survival:
    """How a server container came out of a connection hold."""

    #: The engine's state for it: ``running``, ``exited`` ...
    status: str
    restarts: int
    oom_killed: bool
    #: It answered ``GET /`` with 200 after the hold.
    answering: bool

    @property
    def ok(self) -> bool:
        """Still running, never restarted nor OOM-killed, and answering."""
        return (
            self.status == "running"
            and self.restarts == 0
            and not self.oom_killed
            and self.answering
        )

    def describe(self) -> str:
        """``kept running and answering`` or what went wrong."""
        if self.ok:
            return "kept running and answering"
        problems = [f"status {self.status}"] if self.status != "running" else []
        if self.restarts:
            problems.append(f"restarted {self.restarts} time(s)")
        if self.oom_killed:
            problems.append("OOM-killed")
        if not self.answering:
            problems.append("not answering GET / after it")
        return "did not survive: " + ", ".join(problems)


@dataclass(frozen=True, kw_only=True)
class Hold:
    """Many connections held open on the service at once: busy (wrk) or idle."""

    #: ``busy`` (every connection asking, wrk) or ``idle`` (one request each, then silence).
    kind: str
    connections: int
    duration: float
    #: Requests answered (busy: over the hold; idle: the one request each connection asked).
    answered: int
    errors: int
    mem_peak: int | None
    mem_steady: int | None
    survival: Survival
    note: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hold:
        """Read a hold written by ``asdict``."""
        return cls(**{**data, "survival": Survival(**data["survival"])})


@dataclass(frozen=True, kw_only=True)
class Soak:
    """Sustained load on the service, and how its resident memory moved meanwhile."""

    rounds: list[Point]
    #: The service container's resident memory (cgroup rss): (seconds since the start, bytes).
    samples: list[tuple[float, int]]
    #: Seconds at the start left out of the slope (the first run: warming up).
    settle: float

    @property
    def seconds(self) -> float:
        """Seconds of load, all runs together."""
        return sum(point.duration for point in self.rounds)

    @property
    def requests(self) -> int:
        """Requests answered over the soak."""
        return sum(point.requests for point in self.rounds)

    @property
    def errors(self) -> int:
        """Non-2xx answers and socket errors over the soak."""
        return sum(point.non_2xx + point.socket_errors for point in self.rounds)

    def slope(self) -> float | None:
        """Least-squares slope of resident memory after ``settle``, in MiB per minute.

        Fitted to the median of each ``settle``-long window rather than to every sample: a
        health check's process, which lives for a moment every few seconds, is in the
        container's memory too, and a median leaves it out.
        """
        windows: dict[int, list[int]] = {}
        for t, memory in self.samples:
            if t >= self.settle:
                windows.setdefault(int(t // self.settle), []).append(memory)
        kept = [
            ((index + 0.5) * self.settle, statistics.median(values))
            for index, values in sorted(windows.items())
        ]
        if len(kept) < 3:
            return None
        mean_t = statistics.fmean(t for t, _ in kept)
        mean_m = statistics.fmean(m for _, m in kept)
        spread = sum((t - mean_t) ** 2 for t, _ in kept)
        per_second = sum((t - mean_t) * (m - mean_m) for t, m in kept) / spread
        return per_second * 60 / MIB

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Soak:
        """Read a soak written by ``asdict``."""
        return cls(
            rounds=[Point.from_json(p) for p in data["rounds"]],
            samples=[(float(t), int(m)) for t, m in data["samples"]],
            settle=float(data["settle"]),
        )


@dataclass(frozen=True, kw_only=True)
class Figures:
    """The numbers the gate compares, all at the reference concurrency."""

    #: Service rps / ceiling rps.
    fraction: float
    #: Service p90 / ceiling p90, and the same at p99.
    p90_ratio: float
    p99_ratio: float
    #: Steady working set of the service container (median over its rounds), bytes.
    memory: int
    #: The reference concurrency.
    connections: int


@dataclass(kw_only=True)
class BenchResult:
    """One bench run."""

    started: str
    image: str
    image_id: str
    #: cpus, system, CPU model, memory, key (see gate.machine_key), what shares the cores.
    machine: dict[str, Any]
    #: The limits each server container ran with (from the compose file): cpus, memory, pids.
    limits: dict[str, Any]
    #: How the load reached the containers.
    path: str
    #: The concurrency rounds and figures are taken at.
    reference: int
    #: The servers measured, the gated one first.
    targets: list[str] = field(default_factory=lambda: [SERVICE, CEILING])
    #: The event loop the service reported at start (uvloop or asyncio).
    loop: str = ""
    #: Durations and counts this run used.
    settings: dict[str, Any] = field(default_factory=dict)
    #: The sweep: each target at each concurrency (at the reference, the median round's).
    points: list[Point] = field(default_factory=list)
    #: Every round at the reference concurrency.
    rounds: list[Round] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    soak: Soak | None = None
    #: The service with APP_WORKERS=N in a container of N CPUs: ``workers-N``.
    workers: list[Point] = field(default_factory=list)
    replicas: list[Point] = field(default_factory=list)
    #: The service container's working set over time: (seconds since start, bytes).
    timeline: list[tuple[float, int]] = field(default_factory=list)
    #: Which run was going on when: (start s, end s, label).
    phases: list[tuple[float, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)

    def point(self, target: str, connections: int) -> Point | None:
        """The sweep point of ``target`` at ``connections``, if measured."""
        return next(
            (p for p in self.points if p.target == target and p.connections == connections),
            None,
        )

    def sweep(self, target: str) -> list[Point]:
        """``target``'s sweep points in order of concurrency."""
        return sorted((p for p in self.points if p.target == target), key=lambda p: p.connections)

    def hold(self, kind: str) -> Hold | None:
        """The ``busy`` or ``idle`` hold, if run."""
        return next((hold for hold in self.holds if hold.kind == kind), None)

    def counted_rounds(self) -> list[Round]:
        """The rounds in which no server was held back by the machine."""
        limit = self.limits.get("cpus")
        return [r for r in self.rounds if r.undisturbed(float(limit) if limit else None)]

    def disturbed(self) -> str | None:
        """Why this run cannot be judged (too few undisturbed rounds), or None."""
        counted = self.counted_rounds()
        if len(counted) >= min(MIN_ROUNDS, len(self.rounds)):
            return None
        cores = "; ".join(
            ", ".join(f"{name} {_num(p.cpu_cores)}" for name, p in r.points.items())
            for r in self.rounds
        )
        return (
            f"only {len(counted)} of {len(self.rounds)} rounds at {self.reference} connections "
            f"had every server at {CPU_FLOOR:.0%} or more of its {self.limits.get('cpus')} CPU "
            f"(cores used: {cores}): something else on the machine took the CPU"
        )

    def ratio(self, figure: str, numerator: str, denominator: str) -> float | None:
        """The median over the counted rounds (all, if none counts) of a per-round ratio.

        The targets of a round are measured within seconds of each other, so pairing them by
        round cancels most of what drifts over the minutes a run takes.
        """
        rounds = self.counted_rounds() or self.rounds
        return _median([r.ratio(figure, numerator, denominator) for r in rounds])

    def figures(self) -> Figures:
        """The gate's figures: the service against the ceiling, medians over the rounds.

        :class:`ReportError` when the run has no rounds with latency and memory.
        """
        rounds = self.counted_rounds() or self.rounds
        fraction = self.ratio("rps", SERVICE, CEILING)
        p90 = self.ratio("p90_ms", SERVICE, CEILING)
        p99 = self.ratio("p99_ms", SERVICE, CEILING)
        memory = _median([r.points[SERVICE].mem_steady for r in rounds if SERVICE in r.points])
        if fraction is None or p90 is None or p99 is None or memory is None:
            raise ReportError(
                f"the run has no service/ceiling round at {self.reference} connections with "
                "latency percentiles and memory; include the ceiling, and the reference in "
                "concurrency="
            )
        return Figures(
            fraction=fraction,
            p90_ratio=p90,
            p99_ratio=p99,
            memory=int(memory),
            connections=self.reference,
        )

    @staticmethod
    def scaling_pair(points: Sequence[Point]) -> tuple[Point, Point] | None:
        """The latest measurement with 1 and with 2 of something (workers, replicas).

        A phase whose efficiency missed the floor measures both once more (see
        :func:`scripts.bench.run.scaling_phase`); the later pair is the one judged.
        """
        one = next((p for p in reversed(points) if p.target.endswith("-1")), None)
        two = next((p for p in reversed(points) if p.target.endswith("-2")), None)
        return None if one is None or two is None else (one, two)

    def efficiency(self, points: Sequence[Point]) -> float | None:
        """Throughput with 2 of something (workers, replicas) over twice that with 1."""
        pair = self.scaling_pair(points)
        if pair is None or not pair[0].rps:
            return None
        return pair[1].rps / (2 * pair[0].rps)

    def to_json(self) -> dict[str, Any]:
        """The run as JSON-ready data, with the derived figures alongside."""
        data = asdict(self)
        data["scaling_efficiency"] = {
            "workers": _round(self.efficiency(self.workers)),
            "replicas": _round(self.efficiency(self.replicas)),
        }
        data["soak_slope_mib_per_minute"] = _round(self.soak.slope()) if self.soak else None
        try:
            data["figures"] = asdict(self.figures())
        except ReportError:
            data["figures"] = None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchResult:
        """Read a run written by :meth:`to_json`; :class:`ReportError` if it is not one."""
        # Derived figures, and the service benchmark's judged targets (scripts.bench.service).
        derived = {"scaling_efficiency", "soak_slope_mib_per_minute", "figures", "targets_met"}
        try:
            fields = {k: v for k, v in data.items() if k not in derived}
            fields["points"] = [Point.from_json(p) for p in data["points"]]
            fields["rounds"] = [Round.from_json(r) for r in data.get("rounds", [])]
            fields["holds"] = [Hold.from_json(h) for h in data.get("holds", [])]
            fields["soak"] = Soak.from_json(data["soak"]) if data.get("soak") else None
            fields["workers"] = [Point.from_json(p) for p in data.get("workers", [])]
            fields["replicas"] = [Point.from_json(p) for p in data.get("replicas", [])]
            fields["timeline"] = [(float(t), int(m)) for t, m in data.get("timeline", [])]
            fields["phases"] = [(float(a), float(b), str(c)) for a, b, c in data.get("phases", [])]
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"not a bench result: {exc}") from None

    def write(self, path: Path) -> None:
        """Write the run as JSON."""
        write_json(path, self.to_json())


def read_result(path: Path) -> BenchResult:
    """A run written by :meth:`BenchResult.write`."""
    return read_json(path, BenchResult.from_json, what="a bench result", command="doit bench")


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
