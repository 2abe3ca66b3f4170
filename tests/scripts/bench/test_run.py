"""The bench run's pieces that need no engine: the machine, a missing wrk, and finishing a run
(writing it out, gating it, recording baselines) with planted figures and temporary paths."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from scripts.bench import run
from scripts.bench.gate import absolute_checks, machine_key
from scripts.bench.options import BenchOptions
from scripts.bench.report import BenchResult
from scripts.core.errors import GateFailed, ParamError, ReportError, ToolMissing
from scripts.core.settings import Settings
from tests.scripts.bench.support import point, result, round_

STEM = "20260101T000000Z"


def planted(service_rps: float, cpu: float = 0.96) -> BenchResult:
    bench = result(service_rps=service_rps)
    bench.rounds = [round_(service_rps, 4000, 30, 20, cpu=cpu)]
    bench.replicas = []
    return bench


def test_the_machine_profile_names_what_the_figures_depend_on() -> None:
    profile = run.machine_profile()
    assert profile["cpus"] >= 1
    assert profile["memory_gib"] >= 1
    assert profile["cpu"]
    assert profile["key"] == machine_key(profile)


def test_a_missing_wrk_is_one_clear_error(tmp_path: Path) -> None:
    settings = Settings.from_env({"PATH": str(tmp_path)})
    with pytest.raises(ToolMissing, match="apt-get install wrk"):
        run.measure(settings, None, BenchOptions(), image="x", image_id="y")  # type: ignore[arg-type]


def test_finish_writes_the_run_and_accept_records_the_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "baselines" / "this-machine.json"
    baseline.parent.mkdir()
    accept = BenchOptions.from_vars({"accept": "1"})
    run.finish(planted(2000), accept, out_dir=tmp_path, baseline_path=baseline)
    stem = tmp_path / STEM
    assert json.loads(stem.with_suffix(".json").read_text())["figures"]["fraction"] == 0.5
    report = stem.with_suffix(".md").read_text()
    assert "share this machine's 2 cores" in report
    assert f"Accepted as the new baseline (`doit bench accept=1`) in `{baseline}`." in report
    assert stem.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "latest.json").read_text() == stem.with_suffix(".json").read_text()
    assert json.loads(baseline.read_text())["fraction"] == 0.5

    run.finish(planted(1950), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    with pytest.raises(GateFailed, match="calibrated throughput"):
        run.finish(planted(1500), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    # The failed run is still written, with the verdict in it.
    assert json.loads((tmp_path / "latest.json").read_text())["gate"]["ok"] is False
    assert json.loads(baseline.read_text())["fraction"] == 0.5


def test_accept_replaces_an_unreadable_baseline_and_the_gate_refuses_it(tmp_path: Path) -> None:
    baseline = tmp_path / "bench-baseline.json"
    baseline.write_text('{"fraction": 0.5}')
    with pytest.raises(ReportError, match="accept=1"):
        run.finish(planted(2000), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    assert (tmp_path / f"{STEM}.json").exists()  # the measurement is kept
    accept = BenchOptions.from_vars({"accept": "1"})
    run.finish(planted(2000), accept, out_dir=tmp_path, baseline_path=baseline)
    assert json.loads(baseline.read_text())["p99_ratio"] == 1.5


def test_the_first_run_on_a_machine_becomes_its_baseline_and_passes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scripts.bench.run")
    baseline = tmp_path / "baselines" / "this-machine.json"

    run.finish(planted(2000), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)

    assert json.loads(baseline.read_text())["fraction"] == 0.5
    assert "first run on this machine" in caplog.text
    assert "First run on this machine" in (tmp_path / f"{STEM}.md").read_text()
    with pytest.raises(GateFailed, match="calibrated throughput"):  # later runs are gated
        run.finish(planted(1500), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)


def test_a_first_run_that_fails_its_checks_is_not_recorded(tmp_path: Path) -> None:
    baseline = tmp_path / "baselines" / "this-machine.json"
    failing = planted(2000)
    failing.points[2] = dataclasses.replace(failing.points[2], non_2xx=60)

    with pytest.raises(GateFailed, match="service c=64: 60 non-2xx"):
        run.finish(failing, BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    assert not baseline.exists()


def test_a_disturbed_run_is_not_recorded_as_the_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "bench-baseline.json"
    accept = BenchOptions.from_vars({"accept": "1"})
    with pytest.raises(GateFailed, match=r"^bench not recorded as the baseline: only 0 of 1"):
        run.finish(planted(2000, cpu=0.3), accept, out_dir=tmp_path, baseline_path=baseline)
    assert not baseline.exists()
    assert (tmp_path / "latest.json").exists()


def test_compare_0_gates_on_the_checks_only_and_records_no_baseline(tmp_path: Path) -> None:
    # A long soak of one round: its ratios are noise, its memory slope and answers are not.
    baseline = tmp_path / "baselines" / "this-machine.json"
    soak_only = BenchOptions.from_vars({"compare": "0"})

    run.finish(planted(1500), soak_only, out_dir=tmp_path, baseline_path=baseline)
    assert not baseline.exists()
    assert "Not compared with a baseline (compare=0" in (tmp_path / f"{STEM}.md").read_text()

    run.finish(planted(2000), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    run.finish(planted(1000), soak_only, out_dir=tmp_path, baseline_path=baseline)  # not compared
    failing = planted(2000)
    failing.points[2] = dataclasses.replace(failing.points[2], non_2xx=60)
    with pytest.raises(GateFailed, match="service c=64: 60 non-2xx"):
        run.finish(failing, soak_only, out_dir=tmp_path, baseline_path=baseline)
    with pytest.raises(ParamError, match="accept must be 0 with compare=0"):
        BenchOptions.from_vars({"compare": "0", "accept": "1"})


# ---- the scaling phases ------------------------------------------------------------------------


def scaled(*rps_pairs: tuple[float, float]) -> tuple[BenchResult, list[int]]:
    """Run the scaling phase on measurements that give these (1, 2) rps pairs in turn."""
    bench = dataclasses.replace(result(), workers=[])
    answers = [rps for pair in rps_pairs for rps in pair]
    measured: list[int] = []

    def measure(count: int) -> None:
        measured.append(count)
        bench.workers.append(point(f"workers-{count}", 64, answers.pop(0), 40))

    run.scaling_phase(
        cast(run.Run, SimpleNamespace(result=bench)), "workers", bench.workers, (1, 2), measure
    )
    return bench, measured


def failing_check_ids(bench: BenchResult) -> list[str]:
    return [check.id for check in absolute_checks(bench) if not check.ok]


def test_scaling_above_the_floor_is_measured_once() -> None:
    bench, measured = scaled((2000, 3200))
    assert measured == [1, 2]
    assert bench.notes == []
    assert "BENCH-WORKERS-SCALING" not in failing_check_ids(bench)


def test_a_miss_is_measured_once_more_and_the_second_measurement_is_judged() -> None:
    bench, measured = scaled((2000, 2000), (2000, 3200))
    assert measured == [1, 2, 1, 2]
    assert bench.notes == [
        "1 -> 2 workers scaled at 0.50, below 0.6: both were measured once more, and the gate "
        "judges the second measurement"
    ]
    assert "BENCH-WORKERS-SCALING" not in failing_check_ids(bench)


def test_scaling_that_misses_twice_fails_the_gate() -> None:
    bench, measured = scaled((2000, 2000), (2000, 2100))
    assert measured == [1, 2, 1, 2]
    assert "BENCH-WORKERS-SCALING" in failing_check_ids(bench)
