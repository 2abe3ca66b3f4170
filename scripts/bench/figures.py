"""``python -m scripts.bench.figures``: the README's "Measured here" table, made from reports.

Nobody types a measured figure into the README. Each benchmark writes its report under
``build/`` (``python -m scripts.bench.image`` → ``build/bench/image.json``,
``python -m scripts.bench.service`` → ``build/bench/service.json``, ``doit bench`` →
``build/bench/latest.json``, ``doit security`` → ``build/security/report.json``); this command
reads them, writes the rows into ``docs/measured.json`` (committed: every figure with its
target, the command that measured it and the report and date it came from) and renders the
table between the README's markers. A doc that quotes a figure in its prose (an ADR) marks it,
``<!-- figure: runtime-image-size -->17.5 MB<!-- /figure -->``, and this command rewrites the
marked text too. ``tests/test_docs.py`` fails when the README's table or a marked figure is not
the rendering of ``docs/measured.json``, so the docs cannot disagree with each other.

A report that is absent leaves its rows as they were: rerun one benchmark, then this command,
and only that benchmark's rows change. ``--soak`` takes a long ``doit bench`` soak run
(``build/bench/<started>.json``) for the soak row.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from scripts.bench import gate
from scripts.bench import image as image_bench
from scripts.bench.options import SERVICE, STOCK
from scripts.bench.report import MIB, BenchResult, read_result
from scripts.core import paths
from scripts.core.errors import ReportError, WorkflowError
from scripts.core.records import read_json, write_json

logger = logging.getLogger(__name__)

MEASURED: Final = paths.ROOT / "docs" / "measured.json"
README: Final = paths.ROOT / "README.md"
BEGIN: Final = "<!-- measured: python -m scripts.bench.figures writes this table -->"
END: Final = "<!-- /measured -->"
HEADER: Final = "| what | figure | target | command | measured |\n| --- | --- | --- | --- | --- |"

IMAGE_COMMAND: Final = "python -m scripts.bench.image --rebuild --clean-builds"
SERVICE_COMMAND: Final = "python -m scripts.bench.service"
BENCH_COMMAND: Final = ".venv/bin/doit bench"
SOAK_COMMAND: Final = (
    ".venv/bin/doit bench concurrency=64 rounds=1 hold=0 idle_hold=0 workers=none scaling=0 "
    "soak=600 compare=0"
)
SECURITY_COMMAND: Final = ".venv/bin/doit security"


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the table."""

    #: Which report the row comes from (image, service, bench, soak, security).
    source: str
    what: str
    figure: str
    #: The target and the verdict ("≤ 20 MB", "≥ 1.5×: **missed by 0.19**"), or "".
    target: str
    command: str
    #: The day the report was written (YYYY-MM-DD).
    measured: str

    def markdown(self) -> str:
        """The row as a Markdown table line."""
        cells = [self.what, self.figure, self.target, f"`{self.command}`", self.measured]
        return "| " + " | ".join(cells) + " |"


def verdict(value: float, limit: float, *, at_most: bool, unit: str = "", digits: int = 2) -> str:
    """``≤ 20 MB`` when met, ``≤ 20 MB: **missed by 2.5 MB**`` when not."""
    sign = "≤" if at_most else "≥"
    text = f"{sign} {limit:g}{unit}"
    missed = value - limit if at_most else limit - value
    if missed <= 0:
        return text
    return f"{text}: **missed by {missed:.{digits}f}{unit}**"


def _day(stamp: str) -> str:
    """``20261203T225225Z`` or ``2026-12-03T22:52:25Z`` → ``2026-12-03``."""
    if len(stamp) >= 10 and stamp[4] == "-":
        return stamp[:10]
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}" if len(stamp) >= 8 else stamp


def _maker(source: str, command: str, measured: str) -> Callable[[str, str, str], Row]:
    """Rows of one report: what, figure, target."""

    def row(what: str, figure: str, target: str) -> Row:
        return Row(
            source=source,
            what=what,
            figure=figure,
            target=target,
            command=command,
            measured=measured,
        )

    return row


# ---- one function per report -------------------------------------------------------------------


def image_rows(data: Mapping[str, Any], measured: str) -> list[Row]:
    """``python -m scripts.bench.image`` (with ``--rebuild --clean-builds``)."""

    row = _maker("image", IMAGE_COMMAND, measured)

    size, packed = float(data["size_mb"]), float(data["gzip_mb"])
    first = float(data["first_200_s"]["median"])
    runs = len(data["first_200_s"]["runs"])
    rows = [
        row(
            "runtime image size",
            f"{size:.1f} MB",
            verdict(size, image_bench.TARGET_SIZE_MB, at_most=True, unit=" MB", digits=1)
            + f"; the seed's < {image_bench.SEED_SIZE_MB:g} MB: "
            + (
                f"**missed by {size - image_bench.SEED_SIZE_MB:.1f} MB**"
                if size >= image_bench.SEED_SIZE_MB
                else "met"
            ),
        ),
        row(
            "`docker save \\| gzip -9`",  # the backslash keeps the table's column
            f"{packed:.1f} MB",
            verdict(packed, image_bench.TARGET_GZIP_MB, at_most=True, unit=" MB", digits=1),
        ),
        row(
            "`docker run` → first 200",
            f"{first:.2f} s (median of {runs})",
            verdict(first, image_bench.TARGET_FIRST_200_S, at_most=True, unit=" s"),
        ),
    ]
    rebuild = data.get("rebuild")
    if rebuild:
        seconds = float(rebuild["seconds"])
        changed = ", ".join(str(n) for n in rebuild["changed_layers"])
        rows.append(
            row(
                "rebuild after an app-only change",
                f"{seconds:.1f} s; layer {changed} of {rebuild['layers']} changed",
                verdict(seconds, image_bench.TARGET_REBUILD_S, at_most=True, unit=" s", digits=1),
            )
        )
    clean = data.get("clean_builds")
    if clean:
        same = clean["same_layers"] and clean["same_id"]
        rows.append(
            row(
                "two clean builds",
                "same layers, same image ID" if same else "**they differ**",
                "identical",
            )
        )
    return rows


#: The service benchmark's goals (gate.targets) that are ceilings, not floors, and their units.
_AT_MOST: Final = {"p99", "memory", "idle hold memory"}
_UNITS: Final = {"memory": " MiB", "idle hold memory": " MiB", "share of the ceiling": ""}


def service_rows(result: BenchResult, measured: str) -> list[Row]:
    """``python -m scripts.bench.service``: its targets, judged by the gate's own function."""
    connections = result.reference
    rps = {t: p.rps for t in (SERVICE, STOCK) if (p := result.point(t, connections))}
    idle = result.hold("idle")
    loop = f"{result.loop}, " if result.loop else ""
    what = {
        "throughput": f"service vs stock Quart on the `hypercorn` CLI ({loop}{connections} "
        "connections)",
        "p99": "p99, service vs stock",
        "share of the ceiling": "service vs the raw-ASGI ceiling on the same server",
        "memory": f"service memory at {connections} connections",
        "idle hold memory": f"peak memory holding {idle.connections if idle else 0:,} idle "
        "connections",
    }
    rows = []
    for goal in gate.targets(result):
        if goal.value is None:
            continue
        unit = _UNITS.get(goal.name, "×")
        scale = MIB if unit == " MiB" else 1
        value, limit = goal.value / scale, goal.limit / scale
        if unit == " MiB":
            figure = f"{value:.1f} MiB"
        elif goal.name == "share of the ceiling":
            figure = f"{value:.2f} of its rps"
        else:
            figure = f"{value:.2f}× stock"
        if goal.name == "throughput" and len(rps) == 2:
            figure += f" ({rps[SERVICE]:,.0f} vs {rps[STOCK]:,.0f} rps)"
        rows.append(
            Row(
                source="service",
                what=what.get(goal.name, goal.name),
                figure=figure,
                target=verdict(
                    value,
                    limit,
                    at_most=goal.name in _AT_MOST,
                    unit=unit,
                    digits=1 if unit == " MiB" else 2,
                ),
                command=SERVICE_COMMAND,
                measured=measured,
            )
        )
    return rows


def bench_rows(result: BenchResult, measured: str) -> list[Row]:
    """``doit bench``: the service in its container, the holds, workers, replicas, the soak."""

    row = _maker("bench", BENCH_COMMAND, measured)

    figures = result.figures()
    service = result.point(SERVICE, result.reference)
    cpus = result.limits.get("cpus")
    rows = [
        row(
            f"service container, {result.reference} connections, {cpus} CPU",
            (f"{service.rps:,.0f} rps, " if service else "")
            + f"{figures.fraction:.2f} of the ceiling's rps, p99 {figures.p99_ratio:.2f}× "
            f"the ceiling's, steady memory {figures.memory / MIB:.1f} MiB",
            _gate_verdict(result),
        )
    ]
    for hold in result.holds:
        peak = f"peak {hold.mem_peak / MIB:.1f} MiB" if hold.mem_peak else "memory not sampled"
        rows.append(
            row(
                f"{hold.connections:,} {hold.kind} connections held {hold.duration:g} s",
                f"{hold.survival.describe()}; {hold.answered:,} answered, {hold.errors:,} "
                f"errors; {peak}",
                "survives",
            )
        )
    for name, points in (("workers", result.workers), ("swarm replicas", result.replicas)):
        efficiency, pair = result.efficiency(points), result.scaling_pair(points)
        if efficiency is not None and pair is not None:
            one, two = pair[0].rps, pair[1].rps
            rows.append(
                row(
                    f"1 → 2 {name}",
                    f"{one:,.0f} → {two:,.0f} rps, scaling efficiency {efficiency:.2f}",
                    verdict(efficiency, gate.SCALING_FLOOR, at_most=False),
                )
            )
    rows += soak_rows(result, measured, source="bench", command=BENCH_COMMAND)
    return rows


def _gate_verdict(result: BenchResult) -> str:
    """What the run's gate said of it against its baseline."""
    verdict = result.gate
    if verdict.get("baseline") is None:
        return "recorded as the baseline" if verdict.get("ok") else "not gated"
    outcome = "passed" if verdict.get("ok") else "**failed**"
    return f"gate against the baseline of {_day(str(verdict['baseline']))}: {outcome}"


def soak_rows(
    result: BenchResult, measured: str, *, source: str = "soak", command: str = SOAK_COMMAND
) -> list[Row]:
    """The soak's memory slope, from ``doit bench`` (60 s) or a long soak run."""
    soak, slope = result.soak, result.soak.slope() if result.soak else None
    if soak is None or slope is None:
        return []
    first, last = soak.samples[0][1], soak.samples[-1][1]
    return [
        Row(
            source=source,
            what=f"soak: {soak.seconds:.0f} s at {result.reference} connections, "
            f"{soak.requests:,} requests",
            figure=f"{soak.errors} errors; resident memory {first / MIB:.1f} → "
            f"{last / MIB:.1f} MiB, slope {slope:.2f} MiB/min",
            target=verdict(slope, gate.SOAK_SLOPE_LIMIT, at_most=True, unit=" MiB/min"),
            command=command,
            measured=measured,
        )
    ]


def security_rows(data: Mapping[str, Any], measured: str) -> list[Row]:
    """``doit security``: its checks, its grade, and the churn flood's figures."""
    checks = {c["id"]: c for section in data["sections"].values() for c in section}
    counts = data["counts"]
    grades = ", ".join(f"{g['letter']} ({what})" for what, g in data.get("grades", {}).items())

    row = _maker("security", SECURITY_COMMAND, measured)

    rows = [
        row(
            "security validation",
            f"{counts['checks'] - counts['failed']} of {counts['checks']} checks pass"
            + (f"; header grade {grades}" if grades else ""),
            "all pass",
        )
    ]
    churn = [
        checks[i] for i in ("ATK-CHURN", "ATK-CHURN-RELEASED", "ATK-CHURN-MEMORY") if i in checks
    ]
    if churn:
        rows.append(
            row(
                "clients that connect, ask and hang up",
                "; ".join(c["evidence"] for c in churn),
                "no CLOSE-WAIT after 2 s, < 5 MB RSS",
            )
        )
    return rows


# ---- the table ---------------------------------------------------------------------------------

#: Row sources in table order.
ORDER: Final = ("image", "service", "bench", "soak", "security")


def read_rows(path: Path = MEASURED) -> list[Row]:
    """The rows in ``docs/measured.json``; none when it does not exist yet."""
    if not path.exists():
        return []
    return read_json(
        path,
        lambda data: [Row(**row) for row in data["rows"]],
        what="the measured figures",
        command="python -m scripts.bench.figures",
    )


def merge(old: Sequence[Row], new: Sequence[Row]) -> list[Row]:
    """``old`` with every source ``new`` has rows for replaced by those rows."""
    fresh = {row.source for row in new}
    rows = [row for row in old if row.source not in fresh] + list(new)
    return sorted(rows, key=lambda row: ORDER.index(row.source))


def table(rows: Sequence[Row]) -> str:
    """The Markdown table, between its markers."""
    return "\n".join([BEGIN, HEADER, *(row.markdown() for row in rows), END])


def readme_table(text: str) -> str:
    """The part of the README between the markers, markers included; ReportError if none."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ReportError(
            f"the README has no measured table between {BEGIN!r} and {END!r}; put both markers "
            "where it goes and run python -m scripts.bench.figures"
        )
    return text[start : end + len(END)]


def render_into(text: str, rows: Sequence[Row]) -> str:
    """``text`` (the README) with its measured table replaced by ``rows``."""
    return text.replace(readme_table(text), table(rows))


#: A figure quoted in a doc's prose (an ADR, say): ``<!-- figure: KEY -->17.5 MB<!-- /figure -->``,
#: KEY being the slug of a row's "what" (:func:`slug`), the text that row's figure.
FIGURE_MARK: Final = re.compile(r"<!-- figure: ([a-z0-9-]+) -->(.*?)<!-- /figure -->", re.DOTALL)


def slug(what: str) -> str:
    """A row's key in a figure mark: ``runtime image size`` → ``runtime-image-size``."""
    return re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")


def marks_into(text: str, rows: Sequence[Row], *, doc: str = "the doc") -> str:
    """``text`` with every figure mark holding its row's figure; ReportError for an unknown key."""
    figure = {slug(row.what): row.figure for row in rows}

    def current(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in figure:
            raise ReportError(
                f"{doc} quotes a figure '{key}' that no row of docs/measured.json has; use one "
                f"of {', '.join(sorted(figure))}"
            )
        return f"<!-- figure: {key} -->{figure[key]}<!-- /figure -->"

    return FIGURE_MARK.sub(current, text)


def quoting_docs() -> list[Path]:
    """The docs whose prose quotes measured figures (figure marks): the README and docs/."""
    docs = [README, *sorted((paths.ROOT / "docs").rglob("*.md"))]
    return [doc for doc in docs if FIGURE_MARK.search(doc.read_text())]


# ---- the command -------------------------------------------------------------------------------

Reader = Callable[[Path], list[Row]]


def _reader(source: str) -> Reader:
    def json_rows(parse: Callable[[Mapping[str, Any], str], list[Row]], stamp: str) -> Reader:
        def read(path: Path) -> list[Row]:
            data = json.loads(path.read_text())
            return parse(data, _day(str(data.get(stamp, "")) or _mtime_day(path)))

        return read

    def result_rows(parse: Callable[[BenchResult, str], list[Row]]) -> Reader:
        def read(path: Path) -> list[Row]:
            result = read_result(path)
            return parse(result, _day(result.started))

        return read

    readers: dict[str, Reader] = {
        "image": json_rows(image_rows, "recorded"),
        "service": result_rows(service_rows),
        "bench": result_rows(bench_rows),
        "soak": result_rows(soak_rows),
        "security": json_rows(security_rows, "started"),
    }
    return readers[source]


def _mtime_day(path: Path) -> str:
    stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.UTC)
    return stamp.strftime("%Y%m%d")


def update(reports: Mapping[str, Path | None], *, measured: Path = MEASURED) -> list[Row]:
    """Rows from every report that exists, merged into ``measured``'s; written back."""
    new: list[Row] = []
    for source, path in reports.items():
        if path is None or not path.exists():
            logger.info(
                "figures: no %s report%s; its rows stay", source, f" at {path}" if path else ""
            )
            continue
        try:
            new += _reader(source)(path)
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ReportError(f"{path} is not a {source} report ({exc}); rerun it") from None
    rows = merge(read_rows(measured), new)
    write_json(measured, {"rows": [asdict(row) for row in rows]})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Update docs/measured.json from the reports and render the README's table."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.figures",
        description="Write the README's measured table from the benchmark reports.",
    )
    bench_dir, security_dir = paths.BENCH_DIR, paths.SECURITY_DIR
    parser.add_argument("--image", type=Path, default=bench_dir / "image.json")
    parser.add_argument("--service", type=Path, default=bench_dir / "service.json")
    parser.add_argument("--bench", type=Path, default=bench_dir / "latest.json")
    parser.add_argument("--soak", type=Path, default=None, help="a long doit bench soak run")
    parser.add_argument("--security", type=Path, default=security_dir / "report.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        rows = update(
            {
                "image": args.image,
                "service": args.service,
                "bench": args.bench,
                "soak": args.soak,
                "security": args.security,
            }
        )
        README.write_text(render_into(README.read_text(), rows))
        for doc in quoting_docs():
            doc.write_text(marks_into(doc.read_text(), rows, doc=str(doc.relative_to(paths.ROOT))))
    except WorkflowError as exc:
        print(f"figures: {exc}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
