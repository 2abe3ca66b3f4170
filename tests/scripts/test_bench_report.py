"""The bench's result file, its regression gate and how it is shown (no Docker, no wrk).

Results are built from real wrk reports (tests/scripts/fixtures/wrk) or planted figures; the
gate is judged on a planted slower, slower-tailed and fatter service.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from scripts import wrk
from scripts.bench_report import (
    MIB,
    Baseline,
    BenchResult,
    Margins,
    Point,
    Round,
    Soak,
    Survival,
    Usage,
    compare,
    enforce,
    gate,
    markdown,
    plot,
    read_baseline,
    read_result,
    write_baseline,
)
from scripts.errors import GateFailed, ReportError

WRK_FIXTURES = Path(__file__).parent / "fixtures" / "wrk"
#: The defaults: 10 % for throughput, p90 and memory, 100 % for the noise-bound p99.
MARGINS = Margins()


def point(
    target: str,
    connections: int,
    rps: float,
    p99: float,
    mem: int = 30 * MIB,
    *,
    p90: float | None = None,
    cpu: float | None = 0.9,
) -> Point:
    return Point(
        target=target,
        connections=connections,
        duration=5.0,
        rps=rps,
        requests=int(rps * 5),
        p50_ms=p99 / 3,
        p90_ms=p99 / 2 if p90 is None else p90,
        p99_ms=p99,
        max_ms=p99 * 1.5,
        cpu_cores=cpu,
        mem_peak=mem + 8 * MIB,  # a health check passing through the container
        rss_peak=mem - MIB,
        mem_steady=mem,
    )


def round_(
    service: float,
    ceiling: float,
    service_p99: float,
    ceiling_p99: float,
    *,
    cpu: float = 0.95,
    mem: int = 30 * MIB,
    service_p90: float | None = None,
) -> Round:
    """One pair at 64 connections in which the service used ``cpu`` cores (the ceiling 0.97)."""
    return Round(
        service=point("service", 64, service, service_p99, mem, p90=service_p90, cpu=cpu),
        ceiling=point("ceiling", 64, ceiling, ceiling_p99, 20 * MIB, p90=10.0, cpu=0.97),
    )


def result(
    *,
    service_rps: float = 2000.0,
    p99: float = 40.0,
    p90: float = 20.0,
    mem: int = 30 * MIB,
    ceiling_rps: float = 4000.0,
) -> BenchResult:
    """A run at 1 and 64 connections: the service at ``service_rps`` against a 4000 rps ceiling."""
    bench = BenchResult(
        started="20260101T000000Z",
        image="zeroport:abc",
        image_id="sha256:abc",
        machine={"cpus": 2, "system": "Linux x86_64"},
        limits={"cpus": 1.0, "memory": 128 * MIB, "pids": 64},
        path="bridge",
        reference=64,
    )
    for connections in (1, 64):
        bench.points.append(point("service", connections, service_rps, p99, mem))
        bench.points.append(point("ceiling", connections, ceiling_rps, 20.0, 20 * MIB))
    bench.rounds = [round_(service_rps, ceiling_rps, p99, 20.0, mem=mem, service_p90=p90)]
    bench.replicas = [point("replicas-1", 64, 1500, 50), point("replicas-2", 64, 2400, 45)]
    return bench


def test_point_from_a_real_wrk_report_keeps_every_figure() -> None:
    parsed = wrk.parse((WRK_FIXTURES / "latency_2threads.txt").read_text())
    got = Point.from_wrk(
        "service", parsed, Usage(cpu_cores=0.93, mem_peak=31 * MIB, rss_peak=29 * MIB)
    )
    assert got.connections == 16
    assert got.rps == pytest.approx(3108.0, abs=0.1)
    assert (got.p50_ms, got.p90_ms, got.p99_ms, got.max_ms) == (4.56, 7.93, 13.14, 32.55)
    assert got.requests == 6231
    assert (got.cpu_cores, got.mem_peak) == (0.93, 31 * MIB)


def test_point_from_a_report_without_latency_distribution_has_no_percentiles() -> None:
    parsed = wrk.parse((WRK_FIXTURES / "no_latency.txt").read_text())
    got = Point.from_wrk("service", parsed, Usage())
    assert (got.p50_ms, got.p90_ms, got.p99_ms) == (None, None, None)
    assert got.max_ms == 11.06


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
    bench.write(tmp_path / "run.json")
    again = read_result(tmp_path / "run.json")
    assert again == bench
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["calibration"]["64"]["fraction"] == 0.5
    assert data["figures"]["fraction"] == 0.5
    assert data["scaling_efficiency"] == 0.8


def test_a_file_that_is_not_a_result_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"started": "x"}')
    with pytest.raises(ReportError, match="not a bench result"):
        read_result(tmp_path / "bad.json")
    with pytest.raises(ReportError, match="run: doit bench"):
        read_result(tmp_path / "missing.json")


def test_figures_are_calibrated_and_use_the_median_round() -> None:
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


def test_a_run_the_machine_disturbed_is_not_judged_nor_accepted(tmp_path: Path) -> None:
    bench = result()
    bench.rounds = [round_(2000, 4000, 40, 20, cpu=0.4), round_(2000, 4000, 40, 20, cpu=0.5)]
    reason = bench.disturbed()
    assert reason is not None
    assert reason.startswith("only 0 of 2 rounds at 64 connections had both servers at 80%")
    verdict = gate(bench, baseline_of(result()), MARGINS, accept=True)
    assert not verdict["ok"]
    assert not verdict["accepted"]
    with pytest.raises(GateFailed, match=r"^bench inconclusive: only 0 of 2 rounds"):
        enforce(verdict)
    assert "**INCONCLUSIVE**" in markdown(dataclasses.replace(bench, gate=verdict), "doit bench")


def test_requests_per_cpu_second_cancel_withheld_cpu() -> None:
    starved = round_(1000, 4000, 40, 20, cpu=0.5)  # half the service's CPU went elsewhere
    assert starved.fraction == 0.25
    assert starved.per_cpu_fraction == pytest.approx((1000 / 0.5) / (4000 / 0.97))
    unmeasured = Round(
        service=point("service", 64, 1, 1, cpu=None), ceiling=point("ceiling", 64, 1, 1)
    )
    assert unmeasured.per_cpu_fraction is None


def test_figures_need_the_reference_point() -> None:
    bench = result()
    bench.reference = 256
    bench.rounds = []
    with pytest.raises(ReportError, match="256 connections"):
        bench.figures()


def test_an_equal_run_passes_the_gate(tmp_path: Path) -> None:
    write_baseline(result(), tmp_path / "baseline.json")
    verdict = gate(result(), read_baseline(tmp_path / "baseline.json"), MARGINS)
    assert verdict["ok"]
    enforce(verdict)


def baseline_of(bench: BenchResult) -> Baseline:
    return Baseline(figures=bench.figures(), recorded=bench.started, image=bench.image)


def test_the_same_service_on_a_slower_machine_passes() -> None:
    """Both the service and its ceiling at half speed: the calibrated figures do not move."""
    slower_machine = result(service_rps=1000, ceiling_rps=2000)
    assert gate(slower_machine, baseline_of(result()), MARGINS)["ok"]


def test_a_planted_slower_service_fails_the_gate_with_one_clear_line(tmp_path: Path) -> None:
    write_baseline(result(), tmp_path / "bench-baseline.json")
    slower = result(service_rps=1700)  # 0.425 of the ceiling instead of 0.5: -15 %
    verdict = gate(slower, read_baseline(tmp_path / "bench-baseline.json"), MARGINS)
    assert not verdict["ok"]
    with pytest.raises(GateFailed) as failure:
        enforce(verdict, tmp_path / "bench-baseline.json")
    message = str(failure.value)
    assert "\n" not in message
    assert "calibrated throughput" in message
    assert "-15.0%" in message
    assert "doit bench accept=1" in message


@pytest.mark.parametrize(
    ("worse", "name"),
    [
        (result(p90=24.0), "calibrated p90 (service/ceiling p90)"),  # +20 %
        (result(p99=100.0), "calibrated p99 (service/ceiling p99)"),  # +150 % tail latency
        (result(mem=36 * MIB), "steady memory"),  # +20 % memory
    ],
)
def test_a_rise_in_p99_or_memory_beyond_the_margin_fails(worse: BenchResult, name: str) -> None:
    verdict = gate(worse, baseline_of(result()), MARGINS)
    assert not verdict["ok"]
    assert [c["name"] for c in verdict["comparisons"] if c["regressed"]] == [name]


def test_p99_has_its_own_wider_margin() -> None:
    baseline = baseline_of(result())
    assert gate(result(p99=72.0), baseline, MARGINS)["ok"]  # +80 %: within 100 %
    assert not gate(result(p99=48.0), baseline, Margins(p99=0.10))["ok"]  # +20 %


def test_changes_within_the_margin_pass_and_the_margin_is_configurable() -> None:
    baseline = baseline_of(result())
    slightly = result(service_rps=1850, p90=21.5, mem=32 * MIB)  # -7.5 %, +7.5 %, +6.7 %
    assert gate(slightly, baseline, MARGINS)["ok"]
    assert not gate(slightly, baseline, Margins(margin=0.05, p99=0.05))["ok"]


def test_improvements_never_fail() -> None:
    comparisons = compare(
        result(service_rps=3000, p99=20.0, mem=20 * MIB).figures(), result().figures(), MARGINS
    )
    assert not any(c.regressed for c in comparisons)


def test_no_baseline_passes_and_says_so() -> None:
    verdict = gate(result(), None, MARGINS)
    assert verdict == {
        "ok": True,
        "accepted": False,
        "margin": 0.10,
        "p99_margin": 1.0,
        "baseline": None,
        "disturbed": None,
        "checks": [
            {
                "name": "every answer 2xx",
                "ok": True,
                "text": "8 runs outside the hold, every answer 2xx and no socket error",
            },
            {
                "name": "replica scaling",
                "ok": True,
                "text": "1 -> 2 replicas scaled at 0.80 (at least 0.6)",
            },
        ],
        "comparisons": [],
    }
    assert "accept=1" in markdown(dataclasses.replace(result(), gate=verdict), "doit bench")


def soak(climb_per_minute_mib: float, *, seconds: int = 60, noise: int = 0) -> Soak:
    """A soak of 5-second runs whose resident memory climbs steadily, sampled each second."""
    rounds = [point("soak", 64, 2000, 40) for _ in range(seconds // 5)]
    samples = [
        (float(t), 40 * MIB + int(climb_per_minute_mib * MIB * t / 60) + (noise if t % 2 else 0))
        for t in range(seconds)
    ]
    return Soak(rounds=rounds, samples=samples, settle=5.0)


def test_a_flat_soak_passes_with_or_without_a_baseline() -> None:
    flat = dataclasses.replace(result(), soak=soak(0.0, noise=2 * MIB))

    for baseline in (None, baseline_of(result())):
        verdict = gate(flat, baseline, MARGINS)
        assert verdict["ok"]
        assert verdict["checks"][-1]["name"] == "soak memory slope"
    assert flat.soak is not None
    slope = flat.soak.slope()
    assert slope is not None
    assert abs(slope) < 0.2


def test_memory_that_climbs_over_the_soak_fails_even_without_a_baseline(tmp_path: Path) -> None:
    # 64 connections kept for every 5-second run at ~15 kB each: ~11 MiB a minute.
    leaking = dataclasses.replace(result(), soak=soak(11.0))

    verdict = gate(leaking, None, MARGINS)
    with pytest.raises(GateFailed) as failure:
        enforce(verdict, tmp_path / "baseline.json")

    assert not verdict["ok"]
    assert "climbed 11.00 MiB/min (at most 2)" in str(failure.value)
    assert "**FAIL**: resident memory" in markdown(
        dataclasses.replace(leaking, gate=verdict), "doit bench"
    )
    assert not gate(leaking, baseline_of(result()), MARGINS, accept=True)["ok"]


def test_a_health_check_passing_through_the_container_does_not_count_as_a_climb() -> None:
    # Every 5 s a health check's interpreter lives for a second: +8 MiB in one sample.
    flat = soak(0.0)
    samples = [(t, m + (8 * MIB if int(t) % 5 == 4 else 0)) for t, m in flat.samples]
    late = [(t, m + (8 * MIB if t == 57 else 0)) for t, m in flat.samples]  # one at the end

    for spiky in (samples, late):
        slope = Soak(rounds=flat.rounds, samples=spiky, settle=5.0).slope()
        assert slope is not None
        assert abs(slope) < 0.1


def test_the_first_run_of_the_soak_is_left_out_of_the_slope() -> None:
    warming = soak(0.0)
    samples = [(t, m + (8 * MIB if t < 5 else 0)) for t, m in warming.samples]  # starts high

    slope = Soak(rounds=warming.rounds, samples=samples, settle=5.0).slope()
    assert slope is not None
    assert abs(slope) < 0.01  # with the first run in, it would be steeply negative
    assert Soak(rounds=warming.rounds, samples=samples[:15], settle=5.0).slope() is None


def test_a_soak_round_trips_through_the_result_file(tmp_path: Path) -> None:
    bench = dataclasses.replace(result(), soak=soak(0.5))
    bench.write(tmp_path / "run.json")

    again = read_result(tmp_path / "run.json")

    assert again.soak == bench.soak
    assert json.loads((tmp_path / "run.json").read_text())["soak"]["slope_mib_per_minute"] == 0.5


def failing_checks(bench: BenchResult) -> dict[str, str]:
    verdict = gate(bench, None, MARGINS)
    return {c["name"]: c["text"] for c in verdict["checks"] if not c["ok"]}


def test_a_service_answering_some_500s_fails_even_when_faster() -> None:
    # 3 % of answers 500: wrk counts them as non-2xx, and rps alone would reward it.
    erring = result(service_rps=2400)
    erring.points[2] = dataclasses.replace(erring.points[2], non_2xx=300)

    assert failing_checks(erring) == {
        "every answer 2xx": "8 runs outside the hold, service c=64: 300 non-2xx, 0 socket errors"
    }
    with pytest.raises(GateFailed, match="service c=64: 300 non-2xx"):
        enforce(gate(erring, baseline_of(result()), MARGINS))


def test_socket_errors_fail_but_not_in_the_hold() -> None:
    dropped = result()
    dropped.replicas[1] = dataclasses.replace(dropped.replicas[1], socket_errors=12)
    held = dataclasses.replace(
        result(),
        hold=dataclasses.replace(point("hold", 10_000, 900, 9000), socket_errors=4000),
        survival=Survival(status="running", restarts=0, oom_killed=False, answering=True),
    )

    assert "every answer 2xx" in failing_checks(dropped)
    assert failing_checks(held) == {}


@pytest.mark.parametrize(
    ("survival", "text"),
    [
        (
            Survival(status="exited", restarts=0, oom_killed=False, answering=False),
            "did not survive: status exited, not answering GET / after it",
        ),
        (
            Survival(status="running", restarts=1, oom_killed=True, answering=True),
            "did not survive: restarted 1 time(s), OOM-killed",
        ),
        (None, "was not checked"),
    ],
)
def test_a_hold_the_service_did_not_come_through_fails(
    survival: Survival | None, text: str
) -> None:
    bench = dataclasses.replace(result(), hold=point("hold", 10_000, 900, 9000), survival=survival)

    assert failing_checks(bench) == {
        "the hold": f"through the hold of 10000 connections the service {text}"
    }


def test_replicas_that_do_not_scale_fail() -> None:
    flat = result()
    flat.replicas = [point("replicas-1", 64, 1500, 50), point("replicas-2", 64, 1600, 45)]

    assert failing_checks(flat) == {
        "replica scaling": "1 -> 2 replicas scaled at 0.53 (at least 0.6)"
    }


def test_accept_writes_a_baseline_the_gate_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "bench-baseline.json"
    write_baseline(result(service_rps=1500), path)
    data = json.loads(path.read_text())
    assert data["fraction"] == 0.375
    assert data["reference_connections"] == 64
    assert data["accepted_with"] == "doit bench accept=1"
    assert read_baseline(path).figures.fraction == 0.375  # type: ignore[union-attr]
    # The slower service is now the norm: the same figures pass.
    assert gate(result(service_rps=1500), read_baseline(path), MARGINS)["ok"]


def test_accepting_a_slower_run_passes_and_still_shows_the_comparison() -> None:
    verdict = gate(result(service_rps=1500), baseline_of(result()), MARGINS, accept=True)
    assert verdict["ok"]
    assert verdict["comparisons"][0]["regressed"]
    bench = result(service_rps=1500)
    bench.gate = verdict
    text = markdown(bench, "doit bench")
    assert "Accepted as the new baseline" in text
    assert "Compared against the baseline of 20260101T000000Z" in text


def test_a_baseline_at_another_concurrency_is_refused(tmp_path: Path) -> None:
    other = result()
    other.reference = 16  # its rounds were taken at 16 connections
    write_baseline(other, tmp_path / "b.json")
    with pytest.raises(ReportError, match="reference=16"):
        gate(result(), read_baseline(tmp_path / "b.json"), MARGINS)


def test_a_broken_baseline_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(ReportError, match="accept=1"):
        read_baseline(tmp_path / "b.json")
    assert read_baseline(tmp_path / "missing.json") is None


def test_markdown_states_the_shared_cores_and_shows_every_section() -> None:
    bench = result()
    bench.hold = dataclasses.replace(point("hold", 10000, 900, 3000), note="container kept running")
    bench.gate = gate(bench, baseline_of(result(service_rps=2600)), MARGINS)
    text = markdown(bench, "doit bench duration=5")
    assert "share this machine's 2 cores" in text
    assert "`doit bench duration=5`" in text
    assert "| service | 64 | 2,000 | 0.50 |" in text
    assert "## Connection hold" in text
    assert "container kept running" in text
    assert "Scaling efficiency (rps with 2 / twice rps with 1): 0.80" in text
    assert "**FAIL**" in text
    assert "**regressed**" in text


def test_plot_writes_a_png(tmp_path: Path) -> None:
    bench = result()
    bench.timeline = [(0.0, 29 * MIB), (1.0, 31 * MIB), (2.0, 30 * MIB)]
    bench.phases = [(0.0, 1.0, "service c=1"), (1.0, 2.0, "ceiling c=1")]
    plot(bench, tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
