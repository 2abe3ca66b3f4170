"""The bench step's pieces that need no engine: options, container arguments, the fd limit, and
writing a run out with its gate (planted figures, temporary paths)."""

from __future__ import annotations

import json
import logging
import resource
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scripts import bench
from scripts.bench import BenchOptions, median_pair, server_kwargs
from scripts.bench_report import (
    MIB,
    BenchResult,
    Point,
    Round,
    baseline_for,
    machine_key,
    write_baseline,
)
from scripts.errors import GateFailed, ParamError, ReportError, ToolMissing
from scripts.settings import Settings

COMPOSE_FIXTURES = Path(__file__).parent / "fixtures" / "compose"


def test_default_options_are_the_issue_sweep_with_short_durations() -> None:
    options = BenchOptions.from_vars({})
    assert options.concurrency == (1, 16, 64, 256, 1024)
    assert options.hold == 10_000
    assert options.margin == 0.10
    assert not options.accept
    assert options.planned_seconds() < 240  # a full bench takes a few minutes


def test_options_from_the_command_line() -> None:
    options = BenchOptions.from_vars(
        {
            "concurrency": "64,1, 16",
            "duration": "2",
            "accept": "1",
            "margin": "0.2",
            "hold": "0",
            "scaling": "0",
        }
    )
    assert options.concurrency == (1, 16, 64)
    assert (options.duration, options.accept, options.margin) == (2.0, True, 0.2)
    assert (options.hold, options.scaling) == (0, False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("concurrency", "1,lots"),
        ("concurrency", ""),
        ("duration", "0"),
        ("margin", "-0.1"),
        ("accept", "yes please"),
        ("hold", "1e9"),
        ("reference", "32"),  # not in the sweep
    ],
)
def test_a_bad_option_names_itself(name: str, value: str) -> None:
    with pytest.raises(ParamError, match=f"^{name} must be"):
        BenchOptions.from_vars({name: value})


def test_server_containers_get_the_compose_files_limits_and_hardening() -> None:
    service = json.loads((COMPOSE_FIXTURES / "local.json").read_text())["services"]["app"]
    kwargs = server_kwargs(service, image="zeroport:abc", run_id="r1")
    assert kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["user"] == "1000:1000"
    assert kwargs["init"] is True
    assert (kwargs["mem_limit"], kwargs["memswap_limit"]) == (384 * MIB, 384 * MIB)
    assert (kwargs["pids_limit"], kwargs["nano_cpus"]) == (64, 1_000_000_000)
    assert kwargs["environment"]["APP_LOG_LEVEL"] == "info"
    assert kwargs["log_config"]["Config"] == {"max-file": "3", "max-size": "10m"}
    assert kwargs["labels"] == {bench.LABEL: "r1"}
    assert bench.limits_of(service) == {"cpus": 1.0, "memory": 384 * MIB, "pids": 64}


def test_the_fd_limit_is_raised_within_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = min(hard, soft + 100) if hard != resource.RLIM_INFINITY else soft + 100
        assert bench.raise_fd_limit(wanted) == wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
        if hard != resource.RLIM_INFINITY:
            assert bench.raise_fd_limit(hard + 1000) == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_median_pair_decides_the_sweep_point() -> None:
    def pair(service: float) -> tuple[Point, Point]:
        common: dict[str, Any] = {"connections": 64, "duration": 5, "requests": 1}
        common |= {"p50_ms": 1, "p90_ms": 2, "p99_ms": 3, "max_ms": 4}
        return Point(target="service", rps=service, **common), Point(
            target="ceiling", rps=1000, **common
        )

    assert median_pair([pair(900), pair(200), pair(500)])[0].rps == 500


def test_a_missing_wrk_is_one_clear_error(tmp_path: Path) -> None:
    settings = Settings.from_env({"PATH": str(tmp_path)})
    with pytest.raises(ToolMissing, match="apt-get install wrk"):
        bench.measure(settings, None, BenchOptions(), image="x", image_id="y")  # type: ignore[arg-type]


def test_command_repeats_the_run() -> None:
    options = BenchOptions.from_vars({"duration": "2", "concurrency": "1,64", "scaling": "0"})
    assert bench.command(options) == "doit bench concurrency=1,64 duration=2 scaling=0"


def planted(service_rps: float, cpu: float = 0.96) -> BenchResult:
    result = BenchResult(
        started="20260101T000000Z",
        image="zeroport:abc",
        image_id="sha256:abc",
        machine={"cpus": 2},
        limits={"cpus": 1.0, "memory": 128 * MIB, "pids": 64},
        path="bridge",
        reference=64,
    )
    pair = [
        Point(
            target=target,
            connections=64,
            duration=5,
            rps=rps,
            requests=int(rps * 5),
            p50_ms=10,
            p90_ms=20,
            p99_ms=30,
            max_ms=40,
            cpu_cores=cores,
            mem_peak=38 * MIB,
            mem_steady=30 * MIB,
        )
        for target, rps, cores in (("service", service_rps, cpu), ("ceiling", 4000.0, 0.97))
    ]
    result.points += pair
    result.rounds = [Round(service=pair[0], ceiling=pair[1])]
    return result


def test_finish_writes_the_run_and_accept_records_the_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "bench-baseline.json"
    accept = BenchOptions.from_vars({"accept": "1"})
    bench.finish(planted(2000), accept, out_dir=tmp_path, baseline_path=baseline)
    stem = tmp_path / "20260101T000000Z"
    assert json.loads(stem.with_suffix(".json").read_text())["figures"]["fraction"] == 0.5
    assert "share this machine's 2 cores" in stem.with_suffix(".md").read_text()
    assert stem.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "latest.json").read_text() == stem.with_suffix(".json").read_text()
    assert json.loads(baseline.read_text())["fraction"] == 0.5

    bench.finish(planted(1950), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    with pytest.raises(GateFailed, match="calibrated throughput"):
        bench.finish(planted(1500), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    # The failed run is still written, with the verdict in it.
    assert json.loads((tmp_path / "latest.json").read_text())["gate"]["ok"] is False
    assert json.loads(baseline.read_text())["fraction"] == 0.5


def test_accept_replaces_an_unreadable_baseline_and_the_gate_refuses_it(tmp_path: Path) -> None:
    baseline = tmp_path / "bench-baseline.json"
    baseline.write_text('{"fraction": 0.5}')
    with pytest.raises(ReportError, match="accept=1"):
        bench.finish(planted(2000), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    assert (tmp_path / "20260101T000000Z.json").exists()  # the measurement is kept
    accept = BenchOptions.from_vars({"accept": "1"})
    bench.finish(planted(2000), accept, out_dir=tmp_path, baseline_path=baseline)
    assert json.loads(baseline.read_text())["p90_ratio"] == 1.0


def test_the_first_run_on_a_machine_becomes_its_baseline_and_passes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scripts.bench")
    baseline = tmp_path / "baselines" / "this-machine.json"

    bench.finish(planted(2000), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)

    assert json.loads(baseline.read_text())["fraction"] == 0.5
    assert "first run on this machine" in caplog.text
    assert "First run on this machine" in (tmp_path / "20260101T000000Z.md").read_text()
    with pytest.raises(GateFailed, match="calibrated throughput"):  # later runs are gated
        bench.finish(planted(1500), BenchOptions(), out_dir=tmp_path, baseline_path=baseline)


def test_a_first_run_that_fails_its_checks_is_not_recorded(tmp_path: Path) -> None:
    baseline = tmp_path / "baselines" / "this-machine.json"
    failing = planted(2000)
    failing.points[0] = replace(failing.points[0], non_2xx=60)

    with pytest.raises(GateFailed, match="service c=64: 60 non-2xx"):
        bench.finish(failing, BenchOptions(), out_dir=tmp_path, baseline_path=baseline)
    assert not baseline.exists()


def test_a_machine_gates_against_the_reference_only_when_it_is_of_the_same_kind(
    tmp_path: Path,
) -> None:
    here = bench.machine_profile()
    reference = tmp_path / "bench-baseline.json"
    result = planted(2000)
    result.machine = here
    write_baseline(result, reference)

    assert baseline_for(here, reference=reference, local=tmp_path / "b") == reference
    other = {**here, "cpus": 64, "memory_gib": 256}
    assert baseline_for(other, reference=reference, local=tmp_path / "b") == (
        tmp_path / "b" / f"{machine_key(other)}.json"
    )
    assert here["key"] == machine_key(here)
    assert str(here["cpus"]) in here["key"]


def test_a_disturbed_run_is_not_recorded_as_the_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "bench-baseline.json"
    accept = BenchOptions.from_vars({"accept": "1"})
    with pytest.raises(GateFailed, match=r"^bench not recorded as the baseline: only 0 of 1"):
        bench.finish(planted(2000, cpu=0.3), accept, out_dir=tmp_path, baseline_path=baseline)
    assert not baseline.exists()
    assert (tmp_path / "latest.json").exists()
