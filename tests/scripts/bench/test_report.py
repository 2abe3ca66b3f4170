"""What a bench run measured: points from real wrk reports, rounds, figures, the result file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from scripts.bench import wrk
from scripts.bench.report import MIB, Point, Round, Soak, Usage, read_result
from scripts.bench.rounds import median_round, rotations
from scripts.core.errors import ReportError
from tests.scripts.bench.support import hold, point, result, round_, soak

WRK_FIXTURES = Path(__file__).parent / "fixtures"


def test_point_from_a_real_wrk_report_keeps_every_figure() -> None:
    parsed = wrk.parse((WRK_FIXTURES / "latency_2threads.txt").read_text())
    usage = Usage(cpu_cores=0.93, mem_peak=31 * MIB, rss_peak=29 * MIB, mem_steady=30 * MIB)

    got = Point.from_wrk("service", parsed, usage)

    assert got.connections == 16
    assert got.rps == pytest.approx(3108.0, abs=0.1)
    assert (got.p50_ms, got.p90_ms, got.p99_ms, got.max_ms) == (4.56, 7.93, 13.14, 32.55)
    assert got.requests == 6231
    assert (got.cpu_cores, got.mem_peak, got.mem_steady) == (0.93, 31 * MIB, 30 * MIB)
    assert got.cpu_per_request == pytest.approx(0.93 * got.duration / 6231)


def test_point_from_a_report_without_latency_distribution_has_no_percentiles() -> None:
    got = Point.from_wrk(
        "service", wrk.parse((WRK_FIXTURES / "no_latency.txt").read_text()), Usage()
    )
    assert (got.p50_ms, got.p90_ms, got.p99_ms) == (None, None, None)
    assert got.max_ms == 11.06
    assert got.cpu_per_request is None


def test_point_counts_socket_errors_and_non_2xx() -> None:
    errors = Point.from_wrk(
        "hold", wrk.parse((WRK_FIXTURES / "socket_errors.txt").read_text()), Usage()
    )
    non2xx = Point.from_wrk("s", wrk.parse((WRK_FIXTURES / "non2xx.txt").read_text()), Usage())
    assert errors.socket_errors > 0
    assert non2xx.non_2xx > 0


def test_result_round_trips_through_its_file(tmp_path: Path) -> None:
    bench = result()
    bench.timeline = [(0.5, 30 * MIB), (1.5, 31 * MIB)]
    bench.phases = [(0.0, 5.0, "service c=1")]
    bench.holds = [hold("busy"), hold("idle")]
    bench.soak = soak(0.5)
    bench.workers = [point("workers-1", 64, 2000, 40), point("workers-2", 64, 3200, 40)]

    bench.write(tmp_path / "run.json")
    again = read_result(tmp_path / "run.json")

    assert again == bench
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["figures"]["fraction"] == 0.5
    assert data["scaling_efficiency"] == {"workers": 0.8, "replicas": 0.8}
    assert data["soak_slope_mib_per_minute"] == 0.5


def test_a_file_that_is_not_a_result_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"started": "x"}')
    with pytest.raises(ReportError, match="not a bench result"):
        read_result(tmp_path / "bad.json")
    with pytest.raises(ReportError, match="run: doit bench"):
        read_result(tmp_path / "missing.json")


def test_figures_are_medians_of_per_round_ratios_and_steady_memory() -> None:
    bench = result()
    bench.rounds = [
        round_(1000, 4000, 40, 20),
        round_(2000, 4000, 60, 20),
        round_(3600, 4000, 44, 20),
    ]
    figures = bench.figures()
    assert figures.fraction == 0.5
    assert figures.p99_ratio == 2.2
    assert figures.memory == 30 * MIB  # the steady memory, not the 38 MiB peak


def test_pairing_by_round_cancels_a_machine_that_slowed_down_midway() -> None:
    # The whole machine at half speed in the second round: each round's ratio is still 0.5.
    bench = result()
    bench.rounds = [round_(2000, 4000, 40, 20), round_(1000, 2000, 40, 20)]
    assert bench.ratio("rps", "service", "ceiling") == 0.5


def test_rounds_in_which_a_server_was_held_back_do_not_count() -> None:
    bench = result()
    bench.rounds = [
        round_(2000, 4000, 40, 20),
        round_(2100, 4000, 40, 20),
        round_(3900, 4000, 10, 20, cpu=0.55),  # the service got half its CPU: not counted
        round_(2050, 4000, 42, 20),
    ]
    assert len(bench.counted_rounds()) == 3
    assert bench.figures().fraction == 2050 / 4000
    assert bench.disturbed() is None


def test_a_run_the_machine_disturbed_says_why() -> None:
    bench = result()
    bench.rounds = [round_(2000, 4000, 40, 20, cpu=0.4), round_(2000, 4000, 40, 20, cpu=0.5)]
    reason = bench.disturbed()
    assert reason is not None
    assert reason.startswith("only 0 of 2 rounds at 64 connections had every server at 80%")
    assert "service 0.40, ceiling 0.97" in reason


def test_a_round_compares_cpu_per_request_which_cancels_withheld_cpu() -> None:
    starved = round_(1000, 4000, 40, 20, cpu=0.5)  # half the service's CPU went elsewhere
    assert starved.ratio("rps", "service", "ceiling") == 0.25
    assert starved.ratio("cpu_per_request", "service", "ceiling") == pytest.approx(
        (0.5 / 1000) / (0.97 / 4000)
    )
    unmeasured = Round(points={"service": point("service", 64, 1, 1, cpu=None)})
    assert unmeasured.ratio("cpu_per_request", "service", "ceiling") is None


def test_figures_need_the_reference_round() -> None:
    bench = result()
    bench.reference = 256
    bench.rounds = []
    with pytest.raises(ReportError, match="256 connections"):
        bench.figures()


def test_rounds_rotate_so_no_server_always_goes_first() -> None:
    orders = list(rotations(("service", "stock", "ceiling"), 4))
    assert [order[0] for order in orders] == ["service", "stock", "ceiling", "service"]
    assert all(sorted(order) == ["ceiling", "service", "stock"] for order in orders)


def test_the_median_round_is_the_one_the_table_shows() -> None:
    rounds = [round_(1000, 4000, 40, 20), round_(3000, 4000, 40, 20), round_(2000, 4000, 40, 20)]
    assert median_round(rounds, "service", "ceiling").points["service"].rps == 2000


def test_efficiency_is_two_over_twice_one() -> None:
    bench = dataclasses.replace(result(), workers=[point("workers-1", 64, 2000, 40)])
    assert bench.efficiency(bench.workers) is None
    assert bench.efficiency(bench.replicas) == 0.8


def test_efficiency_judges_the_later_of_two_measurements() -> None:
    workers = [
        point("workers-1", 64, 2000, 40),
        point("workers-2", 64, 2000, 40),  # 0.50: a disturbed first measurement
        point("workers-1", 64, 2000, 40),
        point("workers-2", 64, 3200, 40),  # 0.80
    ]
    bench = dataclasses.replace(result(), workers=workers)
    assert bench.efficiency(bench.workers) == 0.8
    assert bench.scaling_pair(bench.workers) == (workers[2], workers[3])


def test_soak_slope_is_fitted_to_per_run_medians_after_the_first_run() -> None:
    flat = soak(0.0)
    spikes = [(t, m + (8 * MIB if int(t) % 5 == 4 else 0)) for t, m in flat.samples]
    warming = [(t, m + (8 * MIB if t < 5 else 0)) for t, m in flat.samples]

    for samples in (spikes, warming):
        slope = Soak(rounds=flat.rounds, samples=samples, settle=5.0).slope()
        assert slope is not None
        assert abs(slope) < 0.1
    assert soak(11.0).slope() == pytest.approx(11.0, abs=0.01)
    assert Soak(rounds=flat.rounds, samples=flat.samples[:15], settle=5.0).slope() is None
