"""``python -m scripts.bench_service``: the service against the stock setup and the ceiling.

Three servers answer the same hello world on 127.0.0.1, each loaded by wrk in turn:

    service  ``python -m app``: in-process Hypercorn, request ids, JSON access log, guards
    stock    ``hypercorn scripts.baselines.stock_app:app``: Quart + ``after_request`` headers,
             served by the Hypercorn CLI (a supervisor process plus a worker)
    ceiling  ``python -m app.ceiling``: a bare ASGI app on the service's own server setup

(and, with ``--targets``, ``service-nolog``: the service with ``APP_ACCESS_LOG=false``, which
shows what the JSON access log costs).

Each round starts each server, waits until it answers, warms it up, then measures one wrk run
while sampling the resident memory of its whole process tree, and stops it (SIGTERM; the
service and the ceiling must exit 0). The rounds interleave the servers so that a noisy
neighbour hurts all three alike; the report takes each figure's median over the rounds, and
each ratio as the median of that ratio within each round.
It prints rps, p50/p99 latency, peak RSS and CPU time per request for each, the ratios, and
whether the service meets its targets; ``--json`` also writes it all to a file.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from scripts import paths, tools, wrk
from scripts.errors import ParamError, ToolFailed, ToolMissing, Unhealthy, WorkflowError
from scripts.settings import Settings

logger = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
MIB: Final = 1 << 20
#: Seconds a server gets to answer its first request.
START_TIMEOUT: Final = 30.0
#: Seconds a server gets to exit after SIGTERM (the service's grace period is 10 s).
STOP_TIMEOUT: Final = 20.0
#: Seconds between two memory samples of a server's process tree.
SAMPLE_INTERVAL: Final = 0.1

#: What the service must reach against the stock setup (issue 2).
TARGET_RPS_RATIO: Final = 1.25
TARGET_P99_RATIO: Final = 0.8
TARGET_RSS_BYTES: Final = 50 * MIB

#: The servers a run measures by default; ``service-nolog`` (the service without its access
#: log) shows what logging costs when asked for with ``--targets``.
TARGET_NAMES: Final = ("service", "stock", "ceiling")
ALL_TARGETS: Final = (*TARGET_NAMES, "service-nolog")


@dataclass(frozen=True, kw_only=True)
class Options:
    """How hard and how long to load each server."""

    duration: float = 10.0
    warmup: float = 3.0
    connections: int = 64
    threads: int = 1
    rounds: int = 3
    targets: tuple[str, ...] = TARGET_NAMES

    def __post_init__(self) -> None:
        bounds = {
            "--duration": (self.duration, 1, 300),
            "--warmup": (self.warmup, 0, 60),
            "--connections": (self.connections, 1, 10_000),
            "--threads": (self.threads, 1, 64),
            "--rounds": (self.rounds, 1, 20),
        }
        for name, (value, low, high) in bounds.items():
            if not low <= value <= high:
                raise ParamError(name, value, f"a number {low}-{high}")
        if self.connections < self.threads:
            raise ParamError("--connections", self.connections, "at least --threads")
        unknown = set(self.targets) - set(ALL_TARGETS)
        if unknown or not self.targets:
            raise ParamError(
                "--targets", ",".join(self.targets), "some of " + ",".join(ALL_TARGETS)
            )


@dataclass(frozen=True, kw_only=True)
class Target:
    """One server to measure: how to start it, and what to expect when it stops."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    #: True when SIGTERM must end it with exit 0 (the service's own promise).
    clean_exit: bool


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One measured wrk run against one server."""

    target: str
    round: int
    requests: int
    rps: float
    p50: float
    p99: float
    failures: int
    #: Peak resident memory of the server's whole process tree during the run, in bytes.
    peak_rss: int | None
    #: CPU seconds the server's process tree used during the run.
    cpu_seconds: float | None
    exit_code: int | None

    @property
    def cpu_per_request(self) -> float | None:
        """CPU seconds per answered request (steadier than rps on a shared machine)."""
        if self.cpu_seconds is None or not self.requests:
            return None
        return self.cpu_seconds / self.requests


@dataclass(frozen=True, kw_only=True)
class Summary:
    """A server's figures over all rounds: medians, and the highest memory peak."""

    target: str
    rps: float
    p50: float
    p99: float
    peak_rss: int | None
    cpu_per_request: float | None
    failures: int

    @classmethod
    def of(cls, target: str, runs: Sequence[Measurement]) -> Summary:
        """Summarise ``runs`` of ``target``."""
        rss = [run.peak_rss for run in runs if run.peak_rss is not None]
        cpu = [run.cpu_per_request for run in runs if run.cpu_per_request is not None]
        return cls(
            target=target,
            rps=statistics.median(run.rps for run in runs),
            p50=statistics.median(run.p50 for run in runs),
            p99=statistics.median(run.p99 for run in runs),
            peak_rss=max(rss) if rss else None,
            cpu_per_request=statistics.median(cpu) if cpu else None,
            failures=sum(run.failures for run in runs),
        )


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One target the service must meet, and whether it did."""

    name: str
    value: float
    limit: float
    met: bool
    text: str


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything one benchmark run found."""

    options: Options
    measurements: list[Measurement]
    summaries: dict[str, Summary]
    ratios: dict[str, float] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    load_average: float | None = None


# --- the servers -----------------------------------------------------------------------------


def targets(settings: Settings, python: str, port: int) -> dict[str, Target]:
    """The three servers, each to listen on ``HOST:port``."""
    hypercorn = Path(python).parent / "hypercorn"
    if not hypercorn.exists():
        raise ToolMissing(
            "hypercorn", "uv sync (the hypercorn CLI comes with the hypercorn package)"
        )
    env = settings.tool_env(PYTHONPATH=str(paths.ROOT), APP_HOST=HOST, APP_PORT=str(port))
    return {
        "service": Target(name="service", argv=(python, "-m", "app"), env=env, clean_exit=True),
        "stock": Target(
            name="stock",
            argv=(str(hypercorn), "--bind", f"{HOST}:{port}", "scripts.baselines.stock_app:app"),
            env=env,
            clean_exit=False,
        ),
        "ceiling": Target(
            name="ceiling", argv=(python, "-m", "app.ceiling"), env=env, clean_exit=True
        ),
        "service-nolog": Target(
            name="service-nolog",
            argv=(python, "-m", "app"),
            env={**env, "APP_ACCESS_LOG": "false"},
            clean_exit=True,
        ),
    }


def free_port() -> int:
    """A TCP port on HOST that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(
    name: str, port: int, process: subprocess.Popen[bytes], errors: Path
) -> None:
    """Return once ``GET /`` answers 200; :class:`Unhealthy` if the server dies or stalls."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unhealthy(
                f"{name} exited with {process.returncode} before answering: {_last_line(errors)}"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            try:
                connection.request("GET", "/")
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(0.1)
    raise Unhealthy(f"nothing answered on {HOST}:{port} within {START_TIMEOUT:g} s")


# --- the process tree ------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (Linux /proc); [] when /proc is absent."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    parents: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # Field 4 (ppid) follows the command name, which is in parentheses.
            ppid = int(stat.rpartition(")")[2].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    tree = [pid]
    for member in tree:
        tree.extend(parents.get(member, []))
    return tree


def rss_bytes(pids: Sequence[int]) -> int | None:
    """Resident memory of ``pids`` together, in bytes; None when it cannot be read."""
    total = 0
    found = False
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    found = True
    return total if found else None


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User plus system CPU time ``pids`` have used, in seconds; None when unreadable."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    found = False
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            found = True
    return total / ticks if found else None


class MemorySampler:
    """Samples the RSS of a process tree in a thread, keeping the peak."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.pid = pid
        self.interval = interval
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        while True:
            rss = rss_bytes(process_tree(self.pid))
            if rss is not None and (self.peak is None or rss > self.peak):
                self.peak = rss
            if self._stop.wait(self.interval):
                return


# --- measuring -------------------------------------------------------------------------------


def measure(
    target: Target,
    *,
    port: int,
    round_number: int,
    options: Options,
    tool_env: Mapping[str, str],
    load: Callable[..., wrk.WrkResult] = wrk.run,
) -> Measurement:
    """Start ``target``, warm it up, measure one wrk run, stop it."""
    url = f"http://{HOST}:{port}/"
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        errors = Path(scratch) / "stderr"
        with errors.open("wb") as errors_file:
            process = tools.start(
                target.argv, env=target.env, stdout=subprocess.DEVNULL, stderr=errors_file.fileno()
            )
        try:
            wait_until_serving(target.name, port, process, errors)
            if options.warmup:
                load(
                    url,
                    env=tool_env,
                    connections=options.connections,
                    threads=options.threads,
                    duration=max(1.0, options.warmup),
                )
            cpu_before = cpu_seconds(process_tree(process.pid))
            with MemorySampler(process.pid) as sampler:
                result = load(
                    url,
                    env=tool_env,
                    connections=options.connections,
                    threads=options.threads,
                    duration=options.duration,
                )
            cpu_after = cpu_seconds(process_tree(process.pid))
        finally:
            exit_code = tools.stop(process, timeout=STOP_TIMEOUT)
    if target.clean_exit and exit_code != 0:
        raise ToolFailed(list(target.argv), exit_code, "", "it must exit 0 on SIGTERM")
    if result.p50 is None or result.p99 is None:
        raise WorkflowError("wrk reported no latency percentiles (was --latency dropped?)")
    return Measurement(
        target=target.name,
        round=round_number,
        requests=result.requests,
        rps=result.requests_per_second,
        p50=result.p50,
        p99=result.p99,
        failures=result.failures,
        peak_rss=sampler.peak,
        cpu_seconds=(
            cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        ),
        exit_code=exit_code,
    )


def rotations(names: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, target) in an order that rotates each round, so no server always goes first."""
    for number in range(rounds):
        shift = number % len(names)
        for name in [*names[shift:], *names[:shift]]:
            yield number + 1, name


def benchmark(
    options: Options,
    settings: Settings,
    *,
    python: str = sys.executable,
    load: Callable[..., wrk.WrkResult] = wrk.run,
) -> Report:
    """Measure every target ``options.rounds`` times and judge the service."""
    tool_env = settings.tool_env()
    tools.which("wrk", tool_env)
    measurements: list[Measurement] = []
    for number, name in rotations(options.targets, options.rounds):
        port = free_port()
        target = targets(settings, python, port)[name]
        logger.info("round %d: %s on %s:%d", number, name, HOST, port)
        measurements.append(
            measure(
                target,
                port=port,
                round_number=number,
                options=options,
                tool_env=tool_env,
                load=load,
            )
        )
    summaries = {
        name: Summary.of(name, [m for m in measurements if m.target == name])
        for name in options.targets
    }
    ratios, verdicts = judge(summaries, measurements)
    return Report(
        options=options,
        measurements=measurements,
        summaries=summaries,
        ratios=ratios,
        verdicts=verdicts,
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )


def paired_ratio(
    measurements: Sequence[Measurement], figure: str, numerator: str, denominator: str
) -> float | None:
    """The median over rounds of ``figure`` (rps, p99) of one server over another's.

    Each round measures the servers one after the other, so pairing them by round cancels
    most of a neighbour's load drifting over the minutes a run takes.
    """
    by_round: dict[int, dict[str, float]] = {}
    for measurement in measurements:
        by_round.setdefault(measurement.round, {})[measurement.target] = getattr(
            measurement, figure
        )
    ratios = [
        figures[numerator] / figures[denominator]
        for figures in by_round.values()
        if numerator in figures and figures.get(denominator)
    ]
    return statistics.median(ratios) if ratios else None


def judge(
    summaries: Mapping[str, Summary], measurements: Sequence[Measurement]
) -> tuple[dict[str, float], list[Verdict]]:
    """The ratios between the servers (paired by round), and the service's targets."""
    ratios: dict[str, float] = {}
    for name, (figure, numerator, denominator) in {
        "service/stock rps": ("rps", "service", "stock"),
        "service/stock p99": ("p99", "service", "stock"),
        "service/ceiling rps": ("rps", "service", "ceiling"),
        "stock/ceiling rps": ("rps", "stock", "ceiling"),
        "service/service-nolog rps": ("rps", "service", "service-nolog"),
    }.items():
        ratio = paired_ratio(measurements, figure, numerator, denominator)
        if ratio is not None:
            ratios[name] = ratio
    verdicts: list[Verdict] = []
    rps_ratio = ratios.get("service/stock rps")
    p99_ratio = ratios.get("service/stock p99")
    if rps_ratio is not None:
        verdicts.append(
            Verdict(
                name="throughput",
                value=rps_ratio,
                limit=TARGET_RPS_RATIO,
                met=rps_ratio >= TARGET_RPS_RATIO,
                text=f"rps {rps_ratio:.2f}x stock (target >= {TARGET_RPS_RATIO:.2f}x)",
            )
        )
    if p99_ratio is not None:
        verdicts.append(
            Verdict(
                name="p99",
                value=p99_ratio,
                limit=TARGET_P99_RATIO,
                met=p99_ratio <= TARGET_P99_RATIO,
                text=f"p99 {p99_ratio:.2f}x stock (target <= {TARGET_P99_RATIO:.2f}x)",
            )
        )
    service = summaries.get("service")
    if service and service.peak_rss is not None:
        verdicts.append(
            Verdict(
                name="rss",
                value=service.peak_rss,
                limit=TARGET_RSS_BYTES,
                met=service.peak_rss <= TARGET_RSS_BYTES,
                text=(
                    f"peak RSS {service.peak_rss / MIB:.1f} MiB "
                    f"(target <= {TARGET_RSS_BYTES / MIB:.0f} MiB)"
                ),
            )
        )
    return ratios, verdicts


# --- reporting -------------------------------------------------------------------------------


def render(report: Report) -> str:
    """The report as the text the command prints."""
    options = report.options
    lines = [
        f"wrk on {HOST}: {options.threads} thread(s), {options.connections} connections, "
        f"{options.duration:g} s measured after {options.warmup:g} s warm-up; "
        f"median of {options.rounds} round(s)"
        + (f"; load average {report.load_average:.2f}" if report.load_average is not None else ""),
        "",
        f"{'target':<14}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'peak RSS MiB':>14}"
        f"{'CPU us/req':>12}{'errors':>8}",
    ]
    for summary in report.summaries.values():
        rss = f"{summary.peak_rss / MIB:.1f}" if summary.peak_rss is not None else "n/a"
        cpu = (
            f"{summary.cpu_per_request * 1e6:.0f}" if summary.cpu_per_request is not None else "n/a"
        )
        lines.append(
            f"{summary.target:<14}{summary.rps:>10.0f}{summary.p50 * 1e3:>10.2f}"
            f"{summary.p99 * 1e3:>10.2f}{rss:>14}{cpu:>12}{summary.failures:>8}"
        )
    if report.ratios:
        lines += [
            "",
            "ratios (median of per-round ratios): "
            + ", ".join(f"{k} {v:.2f}x" for k, v in report.ratios.items()),
        ]
    for verdict in report.verdicts:
        lines.append(f"{'met   ' if verdict.met else 'MISSED'} {verdict.text}")
    lines.append("(stock RSS counts the Hypercorn CLI's whole process tree)")
    return "\n".join(lines)


def to_json(report: Report) -> str:
    """The report as JSON (seconds and bytes), for ``doit bench`` and the docs."""
    data = asdict(report)
    for measurement, raw in zip(report.measurements, data["measurements"], strict=True):
        raw["cpu_per_request"] = measurement.cpu_per_request
    return json.dumps(data, indent=2, sort_keys=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    """The command line as :class:`Options` and the JSON path, if any."""
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_service",
        description="Benchmark the service against stock Quart+Hypercorn and a bare ASGI "
        "ceiling with wrk on 127.0.0.1.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=defaults.duration,
        help="seconds measured per run (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=defaults.warmup,
        help="seconds of warm-up per run (default: %(default)s)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=defaults.connections,
        help="wrk connections (default: %(default)s)",
    )
    parser.add_argument(
        "--threads", type=int, default=defaults.threads, help="wrk threads (default: %(default)s)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=defaults.rounds,
        help="runs per server; medians are reported (default: %(default)s)",
    )
    parser.add_argument(
        "--targets",
        default=",".join(defaults.targets),
        help=f"comma-separated, from {','.join(ALL_TARGETS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the report to this file"
    )
    args = parser.parse_args(argv)
    options = Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        rounds=args.rounds,
        targets=tuple(name.strip() for name in args.targets.split(",") if name.strip()),
    )
    return options, args.json


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; 1 with one line on stderr when it cannot."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        options, json_path = parse_args(argv)
        report = benchmark(options, Settings.from_env())
    except WorkflowError as error:
        sys.stderr.write(f"bench_service: {error}\n")
        return 1
    sys.stdout.write(render(report) + "\n")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(to_json(report) + "\n")
    return 0


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1][:300]
    return "(no output)"


if __name__ == "__main__":
    sys.exit(main())
