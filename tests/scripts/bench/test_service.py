"""The service benchmark's command: its options (the bench's own type) and its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.bench import service
from scripts.bench.report import MIB, BenchResult
from scripts.core.errors import ParamError, ToolMissing
from tests.scripts.bench.support import hold, result, round_


def test_the_defaults_compare_service_stock_and_ceiling_in_five_rounds() -> None:
    options = service.parse_args([])
    assert options.targets == ("service", "stock", "ceiling")
    assert (options.concurrency, options.reference, options.rounds) == ((64,), 64, 5)
    assert (options.hold, options.soak, options.workers, options.scaling) == (0, 0, (), False)
    assert options.idle_hold == 10_000


def test_flags_become_the_same_options_doit_bench_takes() -> None:
    options = service.parse_args(
        [
            "--duration",
            "3",
            "--connections",
            "32",
            "--rounds",
            "2",
            "--idle-hold",
            "0",
            "--targets",
            "service,service-nolog",
        ]
    )
    assert (options.duration, options.reference, options.concurrency) == (3.0, 32, (32,))
    assert (options.rounds, options.idle_hold) == (2, 0)
    assert options.targets == ("service", "service-nolog")
    with pytest.raises(ParamError, match=r"^targets must be"):
        service.parse_args(["--targets", "service,nginx"])


def measured(service_rps: float) -> BenchResult:
    bench = result()
    bench.targets = ["service", "stock", "ceiling"]
    bench.rounds = [round_(service_rps, 4000, 30, 20, stock=2000) for _ in range(3)]
    bench.points = list(bench.rounds[0].points.values())
    bench.replicas = []
    bench.holds = [hold("idle", mem_peak=100 * MIB)]
    return bench


@pytest.mark.parametrize(("service_rps", "code"), [(3100.0, 0), (2400.0, 1)])
def test_the_exit_code_says_whether_every_target_was_met(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    service_rps: float,
    code: int,
) -> None:
    monkeypatch.setattr(service, "REPORT", tmp_path / "build" / "service.json")
    monkeypatch.setattr(service.paths, "ROOT", tmp_path)
    monkeypatch.setattr(service, "read_record", lambda: type("R", (), {"tag": "t", "id": "i"}))
    monkeypatch.setattr(service.engine, "client", lambda settings: None)
    monkeypatch.setattr(service.run, "measure", lambda *a, **k: measured(service_rps))

    assert service.main([]) == code

    shown = capsys.readouterr().out
    assert ("MISSED throughput" in shown) is bool(code)
    written = json.loads((tmp_path / "build" / "service.json").read_text())
    assert [t["met"] for t in written["targets_met"] if t["name"] == "throughput"] == [not code]


def test_a_run_that_cannot_measure_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_wrk(*_: object, **__: object) -> BenchResult:
        raise ToolMissing("wrk", "apt-get install wrk")

    monkeypatch.setattr(service, "read_record", lambda: type("R", (), {"tag": "t", "id": "i"}))
    monkeypatch.setattr(service.engine, "client", lambda settings: None)
    monkeypatch.setattr(service.run, "measure", no_wrk)

    assert service.main([]) == 2
    assert capsys.readouterr().err.startswith("bench.service: wrk is not installed")
