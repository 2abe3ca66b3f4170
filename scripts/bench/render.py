"""Showing a bench run: the markdown summary, the service benchmark's text, and the PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scripts.bench.gate import (
    BASELINE,
    SCALING_FLOOR,
    SOAK_SLOPE_LIMIT,
    Goal,
    machine_key,
)
from scripts.bench.options import BenchOptions
from scripts.bench.report import CPU_FLOOR, MIB, BenchResult, Hold, Point, Soak

COMMAND = "doit bench"


def command(options: BenchOptions, base: str = COMMAND) -> str:
    """The command line that repeats this run (the variables that differ from the defaults)."""
    default = BenchOptions()
    changed = []
    for name, value in vars(options).items():
        if name in {"accept", "swarm_project", "targets"} or value == getattr(default, name):
            continue
        if isinstance(value, tuple):
            shown = ",".join(map(str, value)) or "none"
        elif isinstance(value, bool):
            shown = str(int(value))
        elif isinstance(value, float):
            shown = f"{value:g}"
        else:
            shown = str(value)
        changed.append(f"{name}={shown}")
    return " ".join([base, *changed])


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e6:.0f}"


_HEADER = (
    "| server | connections | rps | p50 ms | p90 ms | p99 ms | max ms | non-2xx "
    "| socket errors | CPU cores | CPU µs/request | peak MiB | steady MiB |\n| "
    + " | ".join(["---"] * 13)
    + " |"
)


def _row(point: Point) -> str:
    cells = [
        point.target,
        f"{point.connections}",
        f"{point.rps:,.0f}",
        _ms(point.p50_ms),
        _ms(point.p90_ms),
        _ms(point.p99_ms),
        _ms(point.max_ms),
        f"{point.non_2xx}",
        f"{point.socket_errors}",
        _num(point.cpu_cores),
        _us(point.cpu_per_request),
        _mb(point.mem_peak),
        _mb(point.mem_steady),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(result: BenchResult, command_line: str) -> str:
    """A one-minute summary of the run."""
    limits = result.limits
    lines = [
        f"# Bench {result.started}",
        "",
        f"`{command_line}` - image `{result.image}` (event loop: {result.loop or 'unknown'}); "
        f"each server container runs with the compose file's limits ({limits.get('cpus')} CPU, "
        f"{_mb(limits.get('memory'))} MiB, {limits.get('pids')} pids). Load: {result.path}.",
        "",
        f"**The servers and the load generator share this machine's "
        f"{result.machine.get('cpus')} cores**: the figures are what one machine can do "
        "against itself, not what the service does alone.",
        "",
        "## Concurrency sweep",
        "",
        _HEADER,
        *(_row(point) for point in result.points),
    ]
    lines += _round_lines(result)
    for hold in result.holds:
        lines += _hold_lines(hold)
    if result.soak is not None:
        lines += _soak_lines(result.soak)
    for title, points in (("Workers", result.workers), ("Replicas", result.replicas)):
        if points:
            lines += ["", f"## {title}", "", _HEADER, *(_row(p) for p in points), ""]
            lines.append(
                f"Scaling efficiency (rps with 2 / twice rps with 1): "
                f"{_num(result.efficiency(points))} (at least {SCALING_FLOOR:g}). {points[-1].note}"
            )
    lines += ["", "## Gate", ""]
    lines += _gate_lines(result)
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def _round_lines(result: BenchResult) -> list[str]:
    if not result.rounds:
        return []
    counted = result.counted_rounds()

    def listed(figure: str, numerator: str, denominator: str) -> str:
        return ", ".join(
            _num(r.ratio(figure, numerator, denominator)) + ("" if r in counted else "*")
            for r in result.rounds
        )

    first = result.targets[0]
    lines = ["", f"At {result.reference} connections, {len(result.rounds)} rounds:"]
    for other in result.targets[1:]:
        lines.append(
            f"- {first}/{other}: throughput {listed('rps', first, other)}; p99 "
            f"{listed('p99_ms', first, other)}; CPU per request "
            f"{listed('cpu_per_request', first, other)}"
        )
    lines.append(
        f"Medians are taken over the {len(counted)} rounds in which every server got at least "
        f"{CPU_FLOOR:.0%} of its CPU limit (* marks the others); the sweep table shows the "
        "median round."
    )
    return lines


def _hold_lines(hold: Hold) -> list[str]:
    return [
        "",
        f"## {hold.kind.capitalize()} hold",
        "",
        f"{hold.connections} connections for {hold.duration:g} s: {hold.answered:,} answered, "
        f"{hold.errors} errors; memory peak {_mb(hold.mem_peak)} MiB, steady "
        f"{_mb(hold.mem_steady)} MiB; the service container {hold.survival.describe()}."
        + (f" {hold.note}." if hold.note else ""),
    ]


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


def _gate_lines(result: BenchResult) -> list[str]:
    verdict = result.gate
    if not verdict:
        return ["Not evaluated."]
    lines = [
        f"- {'pass' if check['ok'] else '**FAIL**'}: {check['evidence']}"
        for check in verdict.get("checks", [])
    ]
    lines.append("")
    if verdict.get("not_compared"):
        lines.append(f"Not compared with a baseline ({verdict['not_compared']}).")
    elif verdict.get("disturbed"):
        lines.append(f"**INCONCLUSIVE**: {verdict['disturbed']}. Rerun when it is quieter.")
    elif verdict.get("first_on_machine"):
        lines.append(
            f"First run on this machine (`{machine_key(result.machine)}`): recorded as its "
            f"baseline in `{verdict['first_on_machine']}`; later runs are gated against it."
        )
    elif verdict.get("accepted"):
        into = verdict.get("accepted_into", BASELINE.name)
        lines.append(f"Accepted as the new baseline (`doit bench accept=1`) in `{into}`.")
    elif verdict.get("baseline") is not None:
        outcome = "PASS" if verdict["ok"] else "**FAIL**"
        lines += [
            f"{outcome} against the baseline of {verdict['baseline']}, at {result.reference} "
            f"connections, over {len(result.counted_rounds())} undisturbed rounds:",
            "",
            *[
                f"- {c['text']}{' **regressed**' if c['regressed'] else ''}"
                for c in verdict["comparisons"]
            ],
        ]
    return lines


def text(result: BenchResult, verdicts: Sequence[Goal]) -> str:
    """The service benchmark's report, as the command prints it."""
    lines = [
        f"{', '.join(result.targets)} in containers of {result.image} (event loop "
        f"{result.loop or 'unknown'}, {result.limits.get('cpus')} CPU each), wrk on this host "
        f"at {result.reference} connections, {len(result.rounds)} rounds; the servers and wrk "
        f"share {result.machine.get('cpus')} cores",
        "",
        f"{'target':<15}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
        f"{'steady MiB':>12}{'peak MiB':>10}{'errors':>8}",
    ]
    reference: list[Point] = [p for p in result.points if p.connections == result.reference]
    for point in reference:
        lines.append(
            f"{point.target:<15}{point.rps:>9,.0f}{_ms(point.p50_ms):>9}{_ms(point.p99_ms):>9}"
            f"{_us(point.cpu_per_request):>12}{_mb(point.mem_steady):>12}"
            f"{_mb(point.mem_peak):>10}{point.non_2xx + point.socket_errors:>8}"
        )
    for hold in result.holds:
        lines.append(
            f"{hold.kind} hold: {hold.connections} connections, peak {_mb(hold.mem_peak)} MiB, "
            f"{hold.survival.describe()}"
        )
    lines.append("")
    lines += [f"{'met   ' if v.met else 'MISSED'} {v.text}" for v in verdicts]
    lines += [
        f"{'ok    ' if c['ok'] else 'FAILED'} {c['evidence']}"
        for c in result.gate.get("checks", [])
    ]
    return "\n".join(lines)


def plot(result: BenchResult, path: Path) -> None:
    """PNG: rps and p99 against concurrency for each target, memory over time."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rps_axis, p99_axis, memory_axis) = pyplot.subplots(1, 3, figsize=(16, 4.8))
    for target, style in zip(result.targets, ("o-", "s--", "^:", "d-."), strict=False):
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
        for index, (start, end, label) in enumerate(result.phases):
            if index % 2:
                memory_axis.axvspan(start, end, alpha=0.08)
            memory_axis.text(
                start,
                1.0,
                label,
                rotation=90,
                fontsize=6,
                va="top",
                transform=memory_axis.get_xaxis_transform(),
            )
    memory_axis.set_xlabel("seconds since start")
    memory_axis.set_ylabel("MiB (working set)")
    memory_axis.set_title("service container memory")
    memory_axis.grid(True, alpha=0.3)
    figure.suptitle(
        f"{result.image} - {result.started} - servers and load generator share "
        f"{result.machine.get('cpus')} cores"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
