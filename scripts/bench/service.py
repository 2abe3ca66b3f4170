"""``python -m scripts.bench.service``: the shipped service against stock Quart and its ceiling.

Like for like, in containers with the same limits (scripts.bench.servers): the service as
the image runs it (its Python, event loop and settings), stock Quart on the Hypercorn CLI with
the same Python, wheels and event loop, and the ceiling (a raw ASGI app on the service's own
server). wrk loads them in rounds, one after the other, rotated (scripts.bench.rounds); each
ratio is the median of the per-round ratios. An idle hold of 10,000 keep-alive connections
measures what an idle connection costs.

Targets (issue 13), judged by scripts.bench.gate.targets: at least 1.5x stock's requests per
second and 0.75 of the ceiling's; p99 at most 0.6x stock's; at most 50 MiB at 64 connections;
at most 120 MiB peak holding 10,000 idle connections. The command prints its table and
verdicts, writes ``build/bench/service.json``, and exits 1 when a target is missed or a check
fails (an error answer, a server that did not survive), 2 when it could not measure.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace

from scripts.bench import run
from scripts.bench.gate import absolute_checks, targets
from scripts.bench.options import CEILING, SERVICE, STOCK, TARGETS, BenchOptions
from scripts.bench.render import text
from scripts.core import engine, paths
from scripts.core.errors import WorkflowError
from scripts.core.records import read_record
from scripts.core.settings import Settings

REPORT = paths.BENCH_DIR / "service.json"
#: The service benchmark's defaults: one point, five rounds, the idle hold, nothing else.
DEFAULTS = BenchOptions.one_point(
    64, targets=(SERVICE, STOCK, CEILING), rounds=5, idle_hold=10_000, bench_port=18230
)

#: The command's numeric flags: flag, the BenchOptions field it sets, its type, its help.
_FLAGS: tuple[tuple[str, str, type[float] | type[int], str], ...] = (
    ("--duration", "duration", float, "seconds measured per run"),
    ("--warmup", "warmup", float, "seconds of warm-up per server"),
    ("--connections", "reference", int, "wrk connections"),
    ("--rounds", "rounds", int, "rounds of every server; medians are reported"),
    ("--idle-hold", "idle_hold", int, "idle keep-alive connections held, 0 skips"),
    ("--port", "bench_port", int, "first loopback port of the servers"),
)


def parse_args(argv: Sequence[str] | None) -> BenchOptions:
    """The command line as :class:`BenchOptions` (the same type ``doit bench`` uses)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.service",
        description="Benchmark the shipped service against stock Quart on the Hypercorn CLI "
        "and a raw ASGI ceiling, in containers, with wrk.",
    )
    for flag, field, kind, help_text in _FLAGS:
        parser.add_argument(
            flag,
            dest=field,
            type=kind,
            default=getattr(DEFAULTS, field),
            help=f"{help_text} (default: %(default)s)",
        )
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULTS.targets),
        help=f"comma-separated, from {','.join(TARGETS)}; service first (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    names = tuple(name.strip() for name in args.targets.split(",") if name.strip())
    flags = {field: getattr(args, field) for _, field, _, _ in _FLAGS}
    return replace(DEFAULTS, targets=names, concurrency=(args.reference,), **flags)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table and the verdicts; 0 all met, 1 missed, 2 could not measure."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per readiness poll
    try:
        options = parse_args(argv)
        settings = Settings.from_env()
        record = read_record()
        result = run.measure(
            settings, engine.client(settings), options, image=record.tag, image_id=record.id
        )
    except WorkflowError as error:
        sys.stderr.write(f"bench.service: {error}\n")
        return 2
    checks = absolute_checks(result)
    result.gate = {"checks": [check.to_json() for check in checks]}
    verdicts = targets(result)
    print(text(result, verdicts))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    data = result.to_json() | {"targets_met": [asdict(v) for v in verdicts]}
    REPORT.write_text(json.dumps(data, indent=2) + "\n")
    print(f"report: {REPORT.relative_to(paths.ROOT)}")
    missed = [v for v in verdicts if not v.met] + [c for c in result.gate["checks"] if not c["ok"]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
