"""Showing a bench run: the markdown summary, the service benchmark's text, the PNG."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scripts.bench.gate import Margins, gate, targets
from scripts.bench.options import BenchOptions
from scripts.bench.render import command, markdown, plot, text
from scripts.bench.report import MIB
from tests.scripts.bench.support import baseline_of, hold, point, result, round_, soak

MARGINS = Margins()


def test_command_repeats_the_run() -> None:
    options = BenchOptions.from_vars({"duration": "2", "concurrency": "1,64", "scaling": "0"})
    assert command(options) == "doit bench concurrency=1,64 duration=2 scaling=0"


def test_markdown_states_the_shared_cores_and_shows_every_section() -> None:
    bench = result()
    bench.holds = [hold("busy"), hold("idle")]
    bench.soak = soak(0.2)
    bench.workers = [point("workers-1", 64, 2000, 40), point("workers-2", 64, 3200, 40)]
    bench.gate = gate(bench, baseline_of(result(service_rps=2600)), MARGINS)

    shown = markdown(bench, "doit bench duration=5")

    assert "share this machine's 2 cores" in shown
    assert "`doit bench duration=5` - image `zeroport:abc` (event loop: uvloop)" in shown
    assert "| service | 64 | 2,000 |" in shown
    assert "## Busy hold" in shown
    assert "## Idle hold" in shown
    assert "kept running and answering" in shown
    assert "## Soak" in shown
    assert "## Workers" in shown
    assert "Scaling efficiency (rps with 2 / twice rps with 1): 0.80" in shown
    assert "**FAIL**" in shown
    assert "**regressed**" in shown


def test_markdown_says_when_the_first_run_became_the_baseline_or_a_run_was_disturbed() -> None:
    first = result()
    first.gate = gate(first, None, MARGINS) | {"first_on_machine": "build/bench/baselines/x.json"}
    disturbed = result()
    disturbed.rounds = [round_(2000, 4000, 40, 20, cpu=0.3)]
    disturbed.gate = gate(disturbed, None, MARGINS)

    assert "First run on this machine (`linux-x86-64-2cpu-amd-epyc-24gib`)" in markdown(
        first, "doit bench"
    )
    assert "**INCONCLUSIVE**" in markdown(disturbed, "doit bench")


def test_the_service_benchmark_prints_its_table_and_each_verdict() -> None:
    bench = result()
    bench.targets = ["service", "stock", "ceiling"]
    bench.rounds = [round_(2400, 4000, 40, 20, stock=2000)]
    bench.points = list(bench.rounds[0].points.values())
    bench.holds = [hold("idle", mem_peak=100 * MIB)]
    bench.gate = {
        "checks": [{"id": "BENCH-ANSWERS", "title": "answers", "ok": True, "evidence": "all 2xx"}]
    }

    shown = text(bench, targets(bench))

    assert shown.startswith("service, stock, ceiling in containers of zeroport:abc (event loop")
    assert "MISSED throughput 1.20x stock (target >= 1.5x)" in shown
    assert "met    memory at 64 connections 30.0 MiB" in shown
    assert "idle hold: 10000 connections, peak 100.0 MiB, kept running and answering" in shown
    assert "ok     all 2xx" in shown


def test_plot_writes_a_png(tmp_path: Path) -> None:
    bench = dataclasses.replace(result(), timeline=[(0.0, 29 * MIB), (1.0, 31 * MIB)])
    bench.phases = [(0.0, 1.0, "service c=1"), (1.0, 2.0, "ceiling c=1")]
    plot(bench, tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
