"""What one ``doit bench`` run measured, the regression gate on it, and how it is shown.

:class:`BenchResult` is the run as ``build/bench/<timestamp>.json`` holds it. The gate compares
figures at the reference concurrency with the committed baseline (``bench-baseline.json``),
each the median over the service/ceiling pairs measured there that the machine left alone:

* calibrated throughput: the service's requests per second as a fraction of the ceiling's (a raw
  ASGI app on the same server, image and limits, measured in the same run, so the machine's
  speed cancels out); it fails when it drops by more than the margin;
* calibrated p90 and p99: the service's latency over the ceiling's, for the same reason; each
  fails when it rises by more than its margin (p99's is wider: it is noise-bound here);
* steady memory of the service container: the median working set (as ``docker stats`` shows
  it) of each round once it settled, not its peak, which a health check passing through the
  container decides as much as the service; it fails when it rises by more than the margin.

Beside those comparisons, absolute checks hold in every run, with a baseline or without
(:func:`absolute_checks`): no non-2xx answer and no socket error outside the hold; the hold's
container still running, unrestarted, and answering; the replicas scaling at
SCALING_FLOOR or better; the soak's memory slope at SOAK_SLOPE_LIMIT or less.

:func:`markdown` writes the short summary and :func:`plot` the PNG (rps and p99 against
concurrency, memory over time).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts import paths
from scripts.errors import GateFailed, ReportError
from scripts.wrk import WrkResult

#: The reference machine's accepted figures (committed); on that machine the gate compares with
#: them and ``doit bench accept=1`` rewrites them.
BASELINE = paths.ROOT / "bench-baseline.json"
#: Every other machine keeps its own baseline here, recorded by its first ``doit bench``.
MACHINE_BASELINES = paths.BENCH_DIR / "baselines"
MIB = 1 << 20
#: Share of its CPU limit a saturated server must get for a round to count. Under load both
#: servers are CPU-bound (they use 0.94-0.99 of their 1 CPU on a quiet machine here); one that
#: got less was held back by something else on the machine, and the pair says nothing.
CPU_FLOOR = 0.8
#: Undisturbed rounds the gate needs (of the ``rounds`` measured) to judge a run.
MIN_ROUNDS = 2
#: Steepest climb of the service's resident memory over the soak that passes, in MiB per
#: minute. A connection kept after its client left costs ~15 kB, so 64 of them a 5-second
#: round climb ~11 MiB a minute, and 20 bytes kept per request at 2,000 requests/s climb
#: ~2.3; the allocator settling in after a cold start measured up to 1.9 over one minute
#: here (and 0.17 over ten), which the sweep before the soak has already taken.
SOAK_SLOPE_LIMIT = 2.0
#: Least scaling efficiency from 1 to 2 swarm replicas that passes (rps with 2 over twice the
#: rps with 1). Each replica has 1 CPU and wrk runs beside them: on a 2-core machine the two
#: replicas and the load generator share 2 cores, which bounds it near 0.75 (measured 0.75).
SCALING_FLOOR = 0.6


@dataclass(frozen=True, kw_only=True)
class Usage:
    """What the server's container(s) used during one run."""

    #: Mean CPU, in cores (1.0 = one core busy all the time), summed over containers.
    cpu_cores: float | None = None
    #: Highest working set (usage less inactive page cache, as ``docker stats``), in bytes.
    mem_peak: int | None = None
    #: Highest resident anonymous memory (cgroup ``rss``), in bytes.
    rss_peak: int | None = None
    #: Median working set once the run settled (see container_stats.SETTLE), in bytes.
    mem_steady: int | None = None


@dataclass(frozen=True, kw_only=True)
class Point:
    """One measured run: which server, how many connections, and what came out."""

    #: ``service``, ``ceiling``, ``service-loopback``, ``hold``, ``replicas-1``, ``replicas-2``.
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
            cpu_cores=None if usage.cpu_cores is None else round(usage.cpu_cores, 3),
            mem_peak=usage.mem_peak,
            rss_peak=usage.rss_peak,
            mem_steady=usage.mem_steady,
            note=note,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Point:
        """Read a point written by ``asdict``."""
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class Round:
    """One service/ceiling pair at the reference concurrency, measured one after the other."""

    service: Point
    ceiling: Point

    @property
    def fraction(self) -> float | None:
        """Service rps over ceiling rps."""
        return self.service.rps / self.ceiling.rps if self.ceiling.rps else None

    def latency_ratio(self, percentile: str) -> float | None:
        """Service over ceiling latency at ``percentile`` (``p90_ms``, ``p99_ms``)."""
        service, ceiling = getattr(self.service, percentile), getattr(self.ceiling, percentile)
        return service / ceiling if service and ceiling else None

    @property
    def per_cpu_fraction(self) -> float | None:
        """Service requests per CPU-second over the ceiling's: the cost of a request, compared.

        Shown, not gated: it cancels CPU the machine withheld, but it would also hide a service
        that got slower by waiting (blocking) rather than by computing.
        """
        service, ceiling = self.service, self.ceiling
        if not (service.cpu_cores and ceiling.cpu_cores and ceiling.rps):
            return None
        return (service.rps / service.cpu_cores) / (ceiling.rps / ceiling.cpu_cores)

    def undisturbed(self, cpu_limit: float | None) -> bool:
        """True when both servers used at least CPU_FLOOR of their CPU limit (or no limit)."""
        if cpu_limit is None:
            return True
        used = (self.service.cpu_cores, self.ceiling.cpu_cores)
        return all(cores is not None and cores >= CPU_FLOOR * cpu_limit for cores in used)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Round:
        """Read a round written by ``asdict``."""
        return cls(
            service=Point.from_json(data["service"]), ceiling=Point.from_json(data["ceiling"])
        )


@dataclass(frozen=True, kw_only=True)
class Survival:
    """How the service container came out of the connection hold."""

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
        if not spread:
            return None
        per_second = sum((t - mean_t) * (m - mean_m) for t, m in kept) / spread
        return per_second * 60 / MIB

    def to_json(self) -> dict[str, Any]:
        """The soak as JSON-ready data, its slope alongside."""
        return asdict(self) | {"slope_mib_per_minute": _round(self.slope())}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Soak:
        """Read a soak written by :meth:`to_json`."""
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
    """One ``doit bench`` run."""

    started: str
    image: str
    image_id: str
    #: cpus, system, what shares them.
    machine: dict[str, Any]
    #: The limits each server container ran with (from the compose file): cpus, memory, pids.
    limits: dict[str, Any]
    #: How the load reached the containers.
    path: str
    #: The concurrency the gate compares at.
    reference: int
    #: Durations and counts this run used.
    settings: dict[str, Any] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    #: Every service/ceiling pair measured at the reference concurrency.
    rounds: list[Round] = field(default_factory=list)
    hold: Point | None = None
    #: How the service came out of the hold (None: no hold).
    survival: Survival | None = None
    soak: Soak | None = None
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

    def fraction(self, connections: int) -> float | None:
        """Service rps over ceiling rps at ``connections``."""
        service, ceiling = self.point("service", connections), self.point("ceiling", connections)
        if service is None or ceiling is None or not ceiling.rps:
            return None
        return service.rps / ceiling.rps

    def p99_ratio(self, connections: int) -> float | None:
        """Service p99 over ceiling p99 at ``connections``."""
        service, ceiling = self.point("service", connections), self.point("ceiling", connections)
        if service is None or ceiling is None or not service.p99_ms or not ceiling.p99_ms:
            return None
        return service.p99_ms / ceiling.p99_ms

    def sweep_mem_peak(self) -> int | None:
        """The service container's peak working set over its sweep points."""
        peaks = [p.mem_peak for p in self.sweep("service") if p.mem_peak is not None]
        return max(peaks) if peaks else None

    def counted_rounds(self) -> list[Round]:
        """The rounds at the reference in which neither server was held back by the machine."""
        limit = self.limits.get("cpus")
        return [r for r in self.rounds if r.undisturbed(float(limit) if limit else None)]

    def disturbed(self) -> str | None:
        """Why this run cannot be judged (too few undisturbed rounds), or None."""
        counted = self.counted_rounds()
        needed = min(MIN_ROUNDS, len(self.rounds))
        if len(counted) >= needed:
            return None
        cores = "; ".join(
            f"service {_num(r.service.cpu_cores)}, ceiling {_num(r.ceiling.cpu_cores)}"
            for r in self.rounds
        )
        return (
            f"only {len(counted)} of {len(self.rounds)} rounds at {self.reference} connections "
            f"had both servers at {CPU_FLOOR:.0%} or more of their {self.limits.get('cpus')} CPU "
            f"(cores used: {cores}): something else on the machine took the CPU"
        )

    def figures(self) -> Figures:
        """The gate's figures: medians over the undisturbed rounds (all, if none qualifies).

        :class:`ReportError` when the run has no rounds with latency and memory.
        """
        rounds = self.counted_rounds() or self.rounds
        fraction = _median([r.fraction for r in rounds])
        p90 = _median([r.latency_ratio("p90_ms") for r in rounds])
        p99 = _median([r.latency_ratio("p99_ms") for r in rounds])
        memory = _median([r.service.mem_steady for r in rounds])
        if fraction is None or p90 is None or p99 is None or memory is None:
            raise ReportError(
                f"the run has no service/ceiling pair at {self.reference} connections with "
                "latency percentiles and memory; include it in concurrency="
            )
        return Figures(
            fraction=fraction,
            p90_ratio=p90,
            p99_ratio=p99,
            memory=int(memory),
            connections=self.reference,
        )

    def scaling_efficiency(self) -> float | None:
        """rps with 2 replicas over twice the rps with 1 (1.0 = perfect scaling)."""
        by_count = {p.target: p for p in self.replicas}
        one, two = by_count.get("replicas-1"), by_count.get("replicas-2")
        if one is None or two is None or not one.rps:
            return None
        return two.rps / (2 * one.rps)

    def to_json(self) -> dict[str, Any]:
        """The run as JSON-ready data, with the derived figures alongside."""
        data = asdict(self)
        data["calibration"] = {
            str(p.connections): {
                "fraction": _round(self.fraction(p.connections)),
                "p99_ratio": _round(self.p99_ratio(p.connections)),
            }
            for p in self.sweep("service")
        }
        data["scaling_efficiency"] = _round(self.scaling_efficiency())
        data["soak"] = self.soak.to_json() if self.soak else None
        try:
            data["figures"] = asdict(self.figures())
        except ReportError:
            data["figures"] = None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResult:
        """Read a run written by :meth:`to_json`; :class:`ReportError` if it is not one."""
        try:
            derived = {"calibration", "scaling_efficiency", "figures"}
            fields = {k: v for k, v in data.items() if k not in derived}
            fields["points"] = [Point.from_json(p) for p in data["points"]]
            fields["replicas"] = [Point.from_json(p) for p in data.get("replicas", [])]
            fields["rounds"] = [Round.from_json(r) for r in data.get("rounds", [])]
            fields["hold"] = Point.from_json(data["hold"]) if data.get("hold") else None
            fields["soak"] = Soak.from_json(data["soak"]) if data.get("soak") else None
            survival = data.get("survival")
            fields["survival"] = Survival(**survival) if survival else None
            fields["timeline"] = [(float(t), int(m)) for t, m in data.get("timeline", [])]
            fields["phases"] = [(float(a), float(b), str(c)) for a, b, c in data.get("phases", [])]
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"not a bench result: {exc}") from None

    def write(self, path: Path) -> None:
        """Write the run as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def read_result(path: Path) -> BenchResult:
    """A run written by :meth:`BenchResult.write`."""
    try:
        return BenchResult.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ReportError(f"{path} is missing; run: doit bench") from None
    except ValueError as exc:
        raise ReportError(f"{path} is not JSON ({exc})") from None


# ---- the regression gate ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The accepted figures, and where they came from."""

    figures: Figures
    recorded: str
    image: str
    machine: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The baseline file's content."""
        return {
            "recorded": self.recorded,
            "image": self.image,
            "machine": self.machine,
            "reference_connections": self.figures.connections,
            "fraction": round(self.figures.fraction, 4),
            "p90_ratio": round(self.figures.p90_ratio, 4),
            "p99_ratio": round(self.figures.p99_ratio, 4),
            "memory": self.figures.memory,
            "accepted_with": "doit bench accept=1",
        }


def machine_key(machine: Mapping[str, Any]) -> str:
    """A file-name-safe name for a kind of machine: system, cores, CPU model and memory.

    Two machines of one kind share it (their figures are comparable); the host name is left
    out, since CI and cloud machines get a new one each time.
    """
    parts = [
        str(machine.get("system", "")),
        f"{machine.get('cpus')}cpu",
        str(machine.get("cpu", "")),
        f"{machine.get('memory_gib')}gib",
    ]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(parts).lower()).strip("-")


def baseline_for(
    machine: Mapping[str, Any], *, reference: Path = BASELINE, local: Path = MACHINE_BASELINES
) -> Path:
    """The baseline a run on ``machine`` gates against: the committed reference when this is
    the reference machine's kind, else the machine's own file (which may not exist yet)."""
    key = machine_key(machine)
    try:
        recorded = read_baseline(reference)
    except ReportError:
        recorded = None
    if recorded is not None and machine_key(recorded.machine) == key:
        return reference
    return local / f"{key}.json"


def read_baseline(path: Path = BASELINE) -> Baseline | None:
    """The committed baseline, or None when there is none yet."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return Baseline(
            figures=Figures(
                fraction=float(data["fraction"]),
                p90_ratio=float(data["p90_ratio"]),
                p99_ratio=float(data["p99_ratio"]),
                memory=int(data["memory"]),
                connections=int(data["reference_connections"]),
            ),
            recorded=str(data["recorded"]),
            image=str(data["image"]),
            machine=dict(data.get("machine", {})),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportError(
            f"{path} is not a bench baseline ({exc}); record one: doit bench accept=1"
        ) from None


def write_baseline(result: BenchResult, path: Path = BASELINE) -> Baseline:
    """Accept ``result``'s figures as the new baseline."""
    baseline = Baseline(
        figures=result.figures(),
        recorded=result.started,
        image=result.image,
        machine=result.machine,
    )
    path.write_text(json.dumps(baseline.to_json(), indent=2) + "\n")
    return baseline


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One gated figure against its baseline."""

    name: str
    current: float
    baseline: float
    #: Relative change, signed: +0.12 is 12 % higher than the baseline.
    change: float
    #: How far it may move the wrong way.
    margin: float
    #: True when the change is in the bad direction by more than the margin.
    regressed: bool
    unit: str = ""

    def describe(self) -> str:
        """``calibrated throughput 0.41 (baseline 0.48, -14.6%, margin 10%)``."""
        scale = 1 / MIB if self.unit == "MiB" else 1.0
        return (
            f"{self.name} {self.current * scale:.3g}{' ' + self.unit if self.unit else ''} "
            f"(baseline {self.baseline * scale:.3g}, {self.change:+.1%}, "
            f"margin {self.margin:.0%})"
        )


@dataclass(frozen=True, kw_only=True)
class Margins:
    """How far each gated figure may move the wrong way before the gate fails."""

    #: For calibrated throughput, calibrated p90 and peak memory.
    margin: float = 0.10
    #: For calibrated p99, which is far noisier: see BenchOptions.p99_margin.
    p99: float = 1.0


def compare(current: Figures, baseline: Figures, margins: Margins) -> list[Comparison]:
    """Each gated figure against the baseline; lower throughput or higher latency/memory regress."""

    def change(now: float, then: float) -> float:
        return (now - then) / then if then else 0.0

    def rise(name: str, now: float, then: float, margin: float, unit: str = "") -> Comparison:
        moved = change(now, then)
        return Comparison(
            name=name,
            current=now,
            baseline=then,
            change=moved,
            margin=margin,
            regressed=moved > margin,
            unit=unit,
        )

    fraction = change(current.fraction, baseline.fraction)
    return [
        Comparison(
            name="calibrated throughput (service/ceiling rps)",
            current=current.fraction,
            baseline=baseline.fraction,
            change=fraction,
            margin=margins.margin,
            regressed=fraction < -margins.margin,
        ),
        rise(
            "calibrated p90 (service/ceiling p90)",
            current.p90_ratio,
            baseline.p90_ratio,
            margins.margin,
        ),
        rise(
            "calibrated p99 (service/ceiling p99)",
            current.p99_ratio,
            baseline.p99_ratio,
            margins.p99,
        ),
        rise("steady memory", current.memory, baseline.memory, margins.margin, unit="MiB"),
    ]


def gate(
    result: BenchResult,
    baseline: Baseline | None,
    margins: Margins,
    *,
    accept: bool = False,
) -> dict[str, Any]:
    """The gate's verdict as report data; :func:`enforce` turns a failure into an error.

    A run the machine disturbed (see :meth:`BenchResult.disturbed`) is not judged: its verdict
    fails, whatever the figures, and it cannot become the baseline. The absolute checks
    (:func:`absolute_checks`) must pass in every run, a baseline or not. With ``accept`` any
    other run becomes the new baseline: the verdict still compares it with the old one, for
    the record.
    """
    figures = result.figures()
    checks = absolute_checks(result)
    verdict: dict[str, Any] = {
        "ok": all(check["ok"] for check in checks),
        "accepted": accept,
        "margin": margins.margin,
        "p99_margin": margins.p99,
        "baseline": None,
        "disturbed": result.disturbed(),
        "checks": checks,
        "comparisons": [],
    }
    if verdict["disturbed"]:
        return verdict | {"ok": False, "accepted": False}
    comparable = baseline is not None and baseline.figures.connections == figures.connections
    if baseline is None or (accept and not comparable):
        return verdict
    if not comparable:
        raise ReportError(
            f"the baseline was taken at {baseline.figures.connections} connections, this run "
            f"compares at {figures.connections}; use reference={baseline.figures.connections} "
            "or record a new baseline: doit bench accept=1"
        )
    comparisons = compare(figures, baseline.figures, margins)
    regressed = not accept and any(c.regressed for c in comparisons)
    return verdict | {
        "ok": verdict["ok"] and not regressed,
        "baseline": baseline.recorded,
        "comparisons": [asdict(c) | {"text": c.describe()} for c in comparisons],
    }


def absolute_checks(result: BenchResult) -> list[dict[str, Any]]:
    """What every run must show whatever the baseline: ``{"name", "ok", "text"}`` each."""
    checks = [_answers_check(result)]
    if result.hold is not None:
        survival = result.survival
        checks.append(
            {
                "name": "the hold",
                "ok": survival is not None and survival.ok,
                "text": f"through the hold of {result.hold.connections} connections the "
                f"service {survival.describe() if survival else 'was not checked'}",
            }
        )
    efficiency = result.scaling_efficiency()
    if result.replicas:
        checks.append(
            {
                "name": "replica scaling",
                "ok": efficiency is not None and efficiency >= SCALING_FLOOR,
                "text": f"1 -> 2 replicas scaled at {_num(efficiency)} (at least "
                f"{SCALING_FLOOR:g})",
            }
        )
    if result.soak is not None:
        slope = result.soak.slope()
        checks.append(
            {
                "name": "soak memory slope",
                "ok": slope is not None and slope <= SOAK_SLOPE_LIMIT,
                "text": (
                    f"resident memory over the {result.soak.seconds:g} s soak climbed "
                    f"{_num(slope)} MiB/min (at most {SOAK_SLOPE_LIMIT:g})"
                    if slope is not None
                    else "too few memory samples over the soak to judge its slope; "
                    "soak for longer (soak=60)"
                ),
            }
        )
    return checks


def _answers_check(result: BenchResult) -> dict[str, Any]:
    """No run outside the hold may see a non-2xx answer or a socket error."""
    runs = [
        *result.points,
        *(point for pair in result.rounds for point in (pair.service, pair.ceiling)),
        *(result.soak.rounds if result.soak else []),
        *result.replicas,
    ]
    bad = {
        f"{p.target} c={p.connections}: {p.non_2xx} non-2xx, {p.socket_errors} socket errors"
        for p in runs
        if p.non_2xx or p.socket_errors
    }
    return {
        "name": "every answer 2xx",
        "ok": not bad,
        "text": f"{len(runs)} runs outside the hold, "
        + ("every answer 2xx and no socket error" if not bad else "; ".join(sorted(bad))),
    }


def enforce(verdict: dict[str, Any], baseline_path: Path = BASELINE) -> None:
    """:class:`GateFailed` in one line when the verdict says the run regressed or was disturbed."""
    if verdict.get("ok", True):
        return
    if verdict.get("disturbed"):
        raise GateFailed(
            f"bench inconclusive: {verdict['disturbed']}; rerun when the machine is quieter"
        )
    broken = [c["text"] for c in verdict.get("checks", []) if not c["ok"]]
    if broken:
        raise GateFailed(f"bench failed: {'; '.join(broken)}")
    worse = [c["text"] for c in verdict["comparisons"] if c["regressed"]]
    raise GateFailed(
        f"bench regressed against {baseline_path.name}: {'; '.join(worse)}; rerun to rule out "
        "noise, or accept the new figures: doit bench accept=1"
    )


# ---- showing it ------------------------------------------------------------------------------


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(point: Point, fraction: float | None = None) -> str:
    cells = [
        f"{point.target}",
        f"{point.connections}",
        f"{point.rps:,.0f}",
        "-" if fraction is None else f"{fraction:.2f}",
        _ms(point.p50_ms),
        _ms(point.p90_ms),
        _ms(point.p99_ms),
        _ms(point.max_ms),
        f"{point.non_2xx}",
        f"{point.socket_errors}",
        _num(point.cpu_cores),
        _mb(point.mem_peak),
        _mb(point.mem_steady),
    ]
    return "| " + " | ".join(cells) + " |"


_HEADER = (
    "| server | connections | rps | of ceiling | p50 ms | p90 ms | p99 ms | max ms | non-2xx "
    "| socket errors | CPU cores | peak MiB | steady MiB |\n| " + " | ".join(["---"] * 13) + " |"
)


def markdown(result: BenchResult, command: str) -> str:
    """A one-minute summary of the run."""
    limits = result.limits
    cores = result.machine.get("cpus")
    lines = [
        f"# Bench {result.started}",
        "",
        f"`{command}` - image `{result.image}`; each server container runs with the compose "
        f"file's limits ({limits.get('cpus')} CPU, {_mb(limits.get('memory'))} MiB, "
        f"{limits.get('pids')} pids). Load: {result.path}.",
        "",
        f"**The server and the load generator share this machine's {cores} cores**: the figures "
        "are what one machine can do against itself, not what the service does alone.",
        "",
        "## Concurrency sweep, service against its ceiling",
        "",
        _HEADER,
    ]
    for point in result.sweep("service"):
        lines.append(_row(point, result.fraction(point.connections)))
        ceiling = result.point("ceiling", point.connections)
        if ceiling is not None:
            lines.append(_row(ceiling))
    for point in result.points:
        if point.target not in {"service", "ceiling"}:
            lines.append(_row(point))
    if result.rounds:
        counted = result.counted_rounds()

        def mark(r: Round) -> str:
            return "" if r in counted else "*"

        fractions = ", ".join(_num(r.fraction) + mark(r) for r in result.rounds)
        ratios = ", ".join(_num(r.latency_ratio("p99_ms")) + mark(r) for r in result.rounds)
        per_cpu = ", ".join(_num(r.per_cpu_fraction) + mark(r) for r in result.rounds)
        lines += [
            "",
            f"At {result.reference} connections, {len(result.rounds)} service/ceiling pairs: "
            f"throughput fractions {fractions}; p99 ratios {ratios}; requests per CPU-second, "
            f"service over ceiling, {per_cpu}. The gate takes the medians "
            f"of the {len(counted)} pairs in which both servers got at least {CPU_FLOOR:.0%} of "
            "their CPU limit (* marks the others; the table shows the median pair).",
        ]
    if result.hold is not None:
        lines += _hold_lines(result.hold, result.survival)
    if result.soak is not None:
        lines += _soak_lines(result.soak)
    if result.replicas:
        efficiency = result.scaling_efficiency()
        lines += ["", "## Replicas", "", _HEADER, *(_row(p) for p in result.replicas), ""]
        lines.append(
            f"Scaling efficiency (rps with 2 / twice rps with 1): {_num(efficiency)}. "
            + (result.replicas[-1].note or "")
        )
    lines += ["", "## Regression gate", ""]
    verdict = result.gate
    for check in verdict.get("checks", []):
        lines.append(f"- {'pass' if check['ok'] else '**FAIL**'}: {check['text']}")
    if verdict.get("checks"):
        lines.append("")
    if verdict.get("accepted"):
        lines.append(f"Accepted as the new baseline (`doit bench accept=1`) in {BASELINE.name}.")
    if not verdict:
        lines.append("Not evaluated.")
    elif verdict.get("disturbed"):
        lines.append(
            f"**INCONCLUSIVE**: {verdict['disturbed']}. Rerun when the machine is quieter."
        )
    elif verdict.get("first_on_machine"):
        lines.append(
            f"First run on this machine (`{machine_key(result.machine)}`): recorded as its "
            f"baseline in `{verdict['first_on_machine']}`; later runs are gated against it."
        )
    elif verdict.get("baseline") is None:
        if not verdict.get("accepted"):
            lines.append("No baseline yet: record one with `doit bench accept=1`.")
    else:
        outcome = "PASS" if verdict["ok"] else "**FAIL**"
        if verdict.get("accepted"):
            outcome = "Compared"
        lines.append(
            f"{outcome} against the baseline of {verdict['baseline']}, at {result.reference} "
            f"connections, over {len(result.counted_rounds())} undisturbed rounds:"
        )
        lines += [
            "",
            *[
                f"- {c['text']}{' **regressed**' if c['regressed'] else ''}"
                for c in verdict["comparisons"]
            ],
        ]
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def _hold_lines(hold: Point, survival: Survival | None) -> list[str]:
    lines = ["", "## Connection hold", "", _HEADER, _row(hold)]
    if hold.note:
        lines += ["", hold.note]
    if survival is not None:
        lines += ["", f"The service container {survival.describe()}."]
    return lines


def _soak_lines(soak: Soak) -> list[str]:
    first = soak.rounds[0]
    start = _mb(soak.samples[0][1] if soak.samples else None)
    end = _mb(soak.samples[-1][1] if soak.samples else None)
    return [
        "",
        "## Soak",
        "",
        f"{len(soak.rounds)} runs of {first.duration:g} s at {first.connections} connections, "
        f"fresh connections each: {soak.requests:,} requests, {soak.errors} errors; resident "
        f"memory {start} -> {end} MiB, slope after the first run {_num(soak.slope())} MiB/min "
        f"(gate: at most {SOAK_SLOPE_LIMIT:g}).",
    ]


def plot(result: BenchResult, path: Path) -> None:
    """PNG: rps and p99 against concurrency (service, ceiling), memory over time."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rps_axis, p99_axis, memory_axis) = pyplot.subplots(1, 3, figsize=(16, 4.8))
    for target, style in (("service", "o-"), ("ceiling", "s--")):
        sweep = result.sweep(target)
        if not sweep:
            continue
        xs = [p.connections for p in sweep]
        rps_axis.plot(xs, [p.rps for p in sweep], style, label=target)
        p99_axis.plot(xs, [p.p99_ms or float("nan") for p in sweep], style, label=target)
    for axis, title, unit in (
        (rps_axis, "throughput", "requests/s"),
        (p99_axis, "p99 latency", "ms"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent connections")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
        axis.legend()
    p99_axis.set_yscale("log")
    if result.timeline:
        memory_axis.plot(
            [t for t, _ in result.timeline], [m / MIB for _, m in result.timeline], "-"
        )
        _phase_marks(memory_axis, result.phases)
    memory_axis.set_xlabel("seconds since start")
    memory_axis.set_ylabel("MiB (working set)")
    memory_axis.set_title("service container memory")
    memory_axis.grid(True, alpha=0.3)
    figure.suptitle(
        f"{result.image} - {result.started} - server and load generator share "
        f"{result.machine.get('cpus')} cores"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _phase_marks(axis: Any, phases: Sequence[tuple[float, float, str]]) -> None:
    for index, (start, end, label) in enumerate(phases):
        if index % 2:
            axis.axvspan(start, end, alpha=0.08)
        axis.text(
            start,
            1.0,
            label,
            rotation=90,
            fontsize=6,
            va="top",
            transform=axis.get_xaxis_transform(),
        )
