"""The bench's verdicts: checks every run must pass, and the comparison with a baseline.

**Absolute checks** (:func:`absolute_checks`) hold in every run, with a baseline or without:
no non-2xx answer and no socket error outside the busy hold (wrk waits as long as a run lasts
for an answer, so a slow answer is measured, not an error; at the sweep's overload points a
request still unanswered when the run ends is reported, not failed); every hold's container still
running, unrestarted, not OOM-killed and answering; 2 workers and 2 replicas scaling at
SCALING_FLOOR or better (a miss is measured once more, and the later measurement is judged:
see :func:`scripts.bench.run.scaling_phase`); the soak's memory slope at SOAK_SLOPE_LIMIT or
less.

**The comparison** (:func:`compare`) takes the figures at the reference concurrency, each the
median over the rounds the machine left alone, against this machine's baseline:

* calibrated throughput: the service's requests per second as a fraction of the ceiling's (a
  raw ASGI app on the same server, image and limits, in the same run, so the machine's speed
  cancels out); it fails when it drops by more than the margin;
* calibrated p90 and p99: the service's latency over the ceiling's; each fails when it rises
  by more than its margin (p99's is wider: it is noise-bound on shared cores);
* steady memory: the service container's median working set once a round settled (a peak
  would be decided by a health check passing through the container); it fails when it rises
  by more than its margin.

The margins come from the spread of the reference machine's own runs (README, "How long a
run must be"): over sixteen default runs of one unchanged image the medians of calibrated
throughput ranged 0.508-0.609 and of calibrated p90 1.47-1.84, up to 16 % worse than the
baseline's, so their margin is 20 %; steady memory stayed within 28.2-29.1 MiB and keeps
10 %. A smaller change than the margin needs more rounds to be seen
(``rounds=11 margin=0.1``).

**Baselines.** ``bench-baseline.json`` (committed) is the reference machine's; a run on a
machine of that kind (system, cores, CPU model, memory) is compared with it. Any other machine
keeps its own under ``build/bench/baselines/``: its first passing run records it. After a
change to the service, ``doit bench accept=1`` on the reference machine writes the new
figures into the committed file, which is then committed with the change.

**Targets** (:func:`targets`) are the service benchmark's: the service against stock Quart on
the Hypercorn CLI and against the ceiling, and its memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from scripts.bench.options import CEILING, SERVICE, STOCK
from scripts.bench.report import MIB, BenchResult, Figures, Point
from scripts.core import paths
from scripts.core.checks import Check, failed
from scripts.core.errors import GateFailed, ReportError

BASELINE: Final = paths.ROOT / "bench-baseline.json"
#: Every machine not of the reference machine's kind keeps its own baseline here.
MACHINE_BASELINES: Final = paths.BENCH_DIR / "baselines"
#: Steepest climb of the service's resident memory over the soak that passes, in MiB per
#: minute. A connection kept after its client left costs ~15 kB, so 64 of them a 5-second
#: round climb ~11 MiB a minute, and 20 bytes kept per request at 2,000 requests/s climb
#: ~2.3; the allocator settling in after a cold start measured up to 1.9 over one minute
#: here (and 0.17 over ten), which the sweep before the soak has already taken.
SOAK_SLOPE_LIMIT: Final = 2.0
#: Least scaling efficiency from 1 to 2 (workers, or swarm replicas) that passes: throughput
#: with 2 over twice that with 1. Each gets 1 CPU and wrk runs beside them: on a 2-core
#: machine two servers and the load generator share 2 cores, which bounds it near 0.75.
SCALING_FLOOR: Final = 0.6

#: The service benchmark's targets (issue 13), as ratios in one run on one machine.
TARGET_STOCK_RPS: Final = 1.5
TARGET_CEILING_RPS: Final = 0.75
TARGET_STOCK_P99: Final = 0.6
TARGET_MEMORY: Final = 50 * MIB
TARGET_IDLE_HOLD_MEMORY: Final = 120 * MIB


# ---- baselines ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The accepted figures, and where they came from."""

    figures: Figures
    #: When the run was recorded (``%Y%m%dT%H%M%SZ``, UTC).
    recorded: str
    #: The image the run measured.
    image: str
    #: The machine it ran on (scripts.bench.run.machine_profile): a baseline applies to it only.
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
    """The baseline in ``path``, or None when there is none yet."""
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
    """Accept ``result``'s figures as the baseline in ``path``."""
    baseline = Baseline(
        figures=result.figures(),
        recorded=result.started,
        image=result.image,
        machine=result.machine,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline.to_json(), indent=2) + "\n")
    return baseline


# ---- the checks every run must pass --------------------------------------------------------------


def absolute_checks(result: BenchResult) -> list[Check]:
    """What every run must show whatever the baseline."""
    checks = [_answers_check(result)]
    for hold in result.holds:
        checks.append(
            Check(
                id=f"BENCH-{hold.kind.upper()}-HOLD",
                title=f"the {hold.kind} hold",
                ok=hold.survival.ok,
                evidence=f"through the {hold.kind} hold of {hold.connections} connections the "
                f"service {hold.survival.describe()}",
            )
        )
    for what, points in (("workers", result.workers), ("replicas", result.replicas)):
        if len(points) < 2:
            continue
        efficiency = result.efficiency(points)
        checks.append(
            Check(
                id=f"BENCH-{what.upper()}-SCALING",
                title=f"{what} scaling",
                ok=efficiency is not None and efficiency >= SCALING_FLOOR,
                evidence=f"1 -> 2 {what} scaled at {_num(efficiency)} (at least {SCALING_FLOOR:g})",
            )
        )
    if result.soak is not None:
        slope = result.soak.slope()
        checks.append(
            Check(
                id="BENCH-SOAK-SLOPE",
                title="soak memory slope",
                ok=slope is not None and slope <= SOAK_SLOPE_LIMIT,
                evidence=(
                    f"resident memory over the {result.soak.seconds:g} s soak climbed "
                    f"{_num(slope)} MiB/min (at most {SOAK_SLOPE_LIMIT:g})"
                    if slope is not None
                    else "too few memory samples over the soak to judge its slope; "
                    "soak for longer (soak=60)"
                ),
            )
        )
    return checks


def _answers_check(result: BenchResult) -> Check:
    """No run outside the busy hold may see a non-2xx answer or a socket error.

    One exception: in the sweep's overload points (above the reference concurrency), a
    request wrk stopped waiting for after the whole run (a timeout) is reported, not failed.
    There, on shared cores, a saturated 1-CPU server answers some connections only after
    seconds, the raw-ASGI ceiling on the same server as much as the service (both showed
    maxima of 9.9 s in 10 s runs at 1,024 connections here); the latency columns show it.
    A refusal, a reset or a broken answer fails at any concurrency.
    """
    runs = [
        *result.points,
        *(point for pair in result.rounds for point in pair.points.values()),
        *(result.soak.rounds if result.soak else []),
        *result.workers,
        *result.replicas,
    ]
    sweep = {id(point) for point in result.points}

    def overloaded(point: Point) -> bool:
        return id(point) in sweep and point.connections > result.reference

    bad = {
        f"{p.target} c={p.connections}: {p.non_2xx} non-2xx, {p.socket_errors} socket errors"
        for p in runs
        if p.non_2xx or p.socket_errors - (p.timeouts if overloaded(p) else 0)
    }
    slow = sorted(
        f"{p.target} c={p.connections}: {p.timeouts}"
        for p in runs
        if overloaded(p) and p.timeouts and not p.non_2xx and p.socket_errors == p.timeouts
    )
    idle = result.hold("idle")
    if idle is not None and idle.errors:
        bad.add(f"idle hold: {idle.errors} of {idle.connections} connections failed")
    evidence = f"{len(runs)} runs outside the busy hold, " + (
        "every answer 2xx and no socket error" if not bad else "; ".join(sorted(bad))
    )
    if slow:
        evidence += (
            f"; unanswered within the run at overload (above {result.reference} connections, "
            f"reported, not failed): {', '.join(slow)}"
        )
    return Check(id="BENCH-ANSWERS", title="every answer 2xx", ok=not bad, evidence=evidence)


# ---- the comparison with the baseline --------------------------------------------------------


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

    #: For calibrated throughput and calibrated p90: see BenchOptions.margin.
    margin: float = 0.20
    #: For calibrated p99, which is far noisier: see BenchOptions.p99_margin.
    p99: float = 1.0
    #: For steady memory, which holds still: see BenchOptions.memory_margin.
    memory: float = 0.10


def compare(current: Figures, baseline: Figures, margins: Margins) -> list[Comparison]:
    """Each gated figure against the baseline; lower throughput or higher latency/memory regress."""

    def moved(
        name: str,
        now: float,
        then: float,
        margin: float,
        *,
        higher_is_worse: bool = True,
        unit: str = "",
    ) -> Comparison:
        change = (now - then) / then if then else 0.0
        worse = change if higher_is_worse else -change
        return Comparison(
            name=name,
            current=now,
            baseline=then,
            change=change,
            margin=margin,
            regressed=worse > margin,
            unit=unit,
        )

    return [
        moved(
            "calibrated throughput (service/ceiling rps)",
            current.fraction,
            baseline.fraction,
            margins.margin,
            higher_is_worse=False,
        ),
        moved(
            "calibrated p90 (service/ceiling p90)",
            current.p90_ratio,
            baseline.p90_ratio,
            margins.margin,
        ),
        moved(
            "calibrated p99 (service/ceiling p99)",
            current.p99_ratio,
            baseline.p99_ratio,
            margins.p99,
        ),
        moved("steady memory", current.memory, baseline.memory, margins.memory, unit="MiB"),
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
    fails, whatever the figures, and it cannot become the baseline. The absolute checks must
    pass in every run. With ``accept`` any other run becomes the new baseline: the verdict
    still compares it with the old one, for the record.
    """
    figures = result.figures()
    checks = absolute_checks(result)
    verdict: dict[str, Any] = {
        "ok": not failed(checks),
        "accepted": accept,
        "margin": margins.margin,
        "p99_margin": margins.p99,
        "memory_margin": margins.memory,
        "baseline": None,
        "disturbed": result.disturbed(),
        "checks": [check.to_json() for check in checks],
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


def enforce(verdict: Mapping[str, Any], baseline_path: Path = BASELINE) -> None:
    """:class:`GateFailed` in one line when the verdict says the run failed or was disturbed."""
    if verdict.get("ok", True):
        return
    if verdict.get("disturbed"):
        raise GateFailed(
            f"bench inconclusive: {verdict['disturbed']}; rerun when the machine is quieter"
        )
    broken = [c["evidence"] for c in verdict.get("checks", []) if not c["ok"]]
    if broken:
        raise GateFailed(f"bench failed: {'; '.join(broken)}")
    worse = [c["text"] for c in verdict["comparisons"] if c["regressed"]]
    raise GateFailed(
        f"bench regressed against {baseline_path.name}: {'; '.join(worse)}; rerun to rule out "
        "noise, or accept the new figures: doit bench accept=1"
    )


# ---- the service benchmark's targets ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Goal:
    """One target the service must meet, and whether it did."""

    name: str
    value: float | None
    limit: float
    met: bool
    text: str


def targets(result: BenchResult) -> list[Goal]:
    """The service against stock and the ceiling in ``result``, and its memory, judged."""
    found: list[Goal] = []

    def ratio_target(name: str, figure: str, other: str, limit: float, *, at_least: bool) -> None:
        value = result.ratio(figure, SERVICE, other)
        if value is None:
            return
        met = value >= limit if at_least else value <= limit
        sign = ">=" if at_least else "<="
        found.append(
            Goal(
                name=name,
                value=value,
                limit=limit,
                met=met,
                text=f"{name} {value:.2f}x {other} (target {sign} {limit:g}x)",
            )
        )

    if STOCK in result.targets:
        ratio_target("throughput", "rps", STOCK, TARGET_STOCK_RPS, at_least=True)
        ratio_target("p99", "p99_ms", STOCK, TARGET_STOCK_P99, at_least=False)
    if CEILING in result.targets:
        ratio_target("share of the ceiling", "rps", CEILING, TARGET_CEILING_RPS, at_least=True)
    memory = _memory(result)
    if memory is not None:
        found.append(
            Goal(
                name="memory",
                value=memory,
                limit=TARGET_MEMORY,
                met=memory <= TARGET_MEMORY,
                text=f"memory at {result.reference} connections {memory / MIB:.1f} MiB "
                f"(target <= {TARGET_MEMORY / MIB:.0f} MiB)",
            )
        )
    idle = result.hold("idle")
    if idle is not None and idle.mem_peak is not None:
        found.append(
            Goal(
                name="idle hold memory",
                value=idle.mem_peak,
                limit=TARGET_IDLE_HOLD_MEMORY,
                met=idle.mem_peak <= TARGET_IDLE_HOLD_MEMORY and idle.survival.ok,
                text=f"peak memory holding {idle.connections} idle connections "
                f"{idle.mem_peak / MIB:.1f} MiB (target <= "
                f"{TARGET_IDLE_HOLD_MEMORY / MIB:.0f} MiB)",
            )
        )
    return found


def _memory(result: BenchResult) -> float | None:
    rounds = result.counted_rounds() or result.rounds
    values = [r.points[SERVICE].mem_steady for r in rounds if SERVICE in r.points]
    present = sorted(v for v in values if v is not None)
    return present[len(present) // 2] if present else None


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
