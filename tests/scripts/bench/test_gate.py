"""The bench's verdicts: checks every run must pass, the comparison, baselines, targets.

Results are planted (tests/scripts/bench/support.py): each test sets the figures it judges,
including the broken services the canaries are in tests/docker (500s, deaths, no scaling).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from scripts.bench.gate import (
    Margins,
    absolute_checks,
    baseline_for,
    compare,
    enforce,
    gate,
    machine_key,
    read_baseline,
    targets,
    write_baseline,
)
from scripts.bench.report import MIB, BenchResult, Survival
from scripts.core.errors import GateFailed, ReportError
from tests.scripts.bench.support import baseline_of, hold, point, result, round_, soak

#: The defaults: 20 % for throughput and p90, 10 % for memory, 100 % for the noise-bound p99.
MARGINS = Margins()


def failing_checks(bench: BenchResult) -> dict[str, str]:
    return {c.title: c.evidence for c in absolute_checks(bench) if not c.ok}


# ---- the comparison ----------------------------------------------------------------------------


def test_an_equal_run_passes_the_gate(tmp_path: Path) -> None:
    write_baseline(result(), tmp_path / "baseline.json")
    verdict = gate(result(), read_baseline(tmp_path / "baseline.json"), MARGINS)
    assert verdict["ok"]
    enforce(verdict)


def test_the_same_service_on_a_slower_machine_passes() -> None:
    """Both the service and its ceiling at half speed: the calibrated figures do not move."""
    assert gate(result(service_rps=1000, ceiling_rps=2000), baseline_of(result()), MARGINS)["ok"]


def test_a_planted_slower_service_fails_the_gate_with_one_clear_line(tmp_path: Path) -> None:
    write_baseline(result(), tmp_path / "bench-baseline.json")
    slower = result(service_rps=1500)  # 0.375 of the ceiling instead of 0.5: -25 %
    verdict = gate(slower, read_baseline(tmp_path / "bench-baseline.json"), MARGINS)
    assert not verdict["ok"]
    with pytest.raises(GateFailed) as failure:
        enforce(verdict, tmp_path / "bench-baseline.json")
    message = str(failure.value)
    assert "\n" not in message
    assert "calibrated throughput" in message
    assert "-25.0%" in message
    assert "doit bench accept=1" in message


@pytest.mark.parametrize(
    ("worse", "name"),
    [
        (result(p90=26.0), "calibrated p90 (service/ceiling p90)"),  # +30 %
        (result(p99=100.0), "calibrated p99 (service/ceiling p99)"),  # +150 % tail latency
        (result(mem=36 * MIB), "steady memory"),  # +20 % memory
    ],
)
def test_a_rise_in_latency_or_memory_beyond_the_margin_fails(worse: BenchResult, name: str) -> None:
    verdict = gate(worse, baseline_of(result()), MARGINS)
    assert not verdict["ok"]
    assert [c["name"] for c in verdict["comparisons"] if c["regressed"]] == [name]


def test_p99_has_its_own_wider_margin() -> None:
    baseline = baseline_of(result())
    assert gate(result(p99=72.0), baseline, MARGINS)["ok"]  # +80 %: within 100 %
    assert not gate(result(p99=48.0), baseline, Margins(p99=0.10))["ok"]  # +20 %


def test_changes_within_the_margin_pass_and_the_margin_is_configurable() -> None:
    baseline = baseline_of(result())
    slightly = result(service_rps=1700, p90=23.0, mem=32 * MIB)  # -15 %, +15 %, +6.7 %
    assert gate(slightly, baseline, MARGINS)["ok"]
    assert not gate(slightly, baseline, Margins(margin=0.10))["ok"]
    assert not gate(slightly, baseline, Margins(memory=0.05))["ok"]


def test_improvements_never_fail() -> None:
    comparisons = compare(
        result(service_rps=3000, p99=20.0, mem=20 * MIB).figures(), result().figures(), MARGINS
    )
    assert not any(c.regressed for c in comparisons)


def test_a_run_the_machine_disturbed_is_not_judged_nor_accepted() -> None:
    bench = result()
    bench.rounds = [round_(2000, 4000, 40, 20, cpu=0.4), round_(2000, 4000, 40, 20, cpu=0.5)]
    verdict = gate(bench, baseline_of(result()), MARGINS, accept=True)
    assert not verdict["ok"]
    assert not verdict["accepted"]
    with pytest.raises(GateFailed, match=r"^bench inconclusive: only 0 of 2 rounds"):
        enforce(verdict)


def test_no_baseline_compares_nothing_but_still_checks() -> None:
    verdict = gate(result(), None, MARGINS)
    assert verdict["ok"]
    assert verdict["comparisons"] == []
    assert [c["id"] for c in verdict["checks"]] == ["BENCH-ANSWERS", "BENCH-REPLICAS-SCALING"]


def test_accepting_a_slower_run_passes_and_still_shows_the_comparison() -> None:
    verdict = gate(result(service_rps=1500), baseline_of(result()), MARGINS, accept=True)
    assert verdict["ok"]
    assert verdict["comparisons"][0]["regressed"]


def test_a_baseline_at_another_concurrency_is_refused(tmp_path: Path) -> None:
    other = result()
    other.reference = 16  # its rounds were taken at 16 connections
    write_baseline(other, tmp_path / "b.json")
    with pytest.raises(ReportError, match="reference=16"):
        gate(result(), read_baseline(tmp_path / "b.json"), MARGINS)


# ---- the checks every run must pass ----------------------------------------------------------


def test_a_service_answering_some_500s_fails_even_when_faster() -> None:
    # 3 % of answers 500: wrk counts them as non-2xx, and rps alone would reward it.
    erring = result(service_rps=2400)
    erring.points[2] = dataclasses.replace(erring.points[2], non_2xx=300)

    assert failing_checks(erring) == {
        "every answer 2xx": "8 runs outside the busy hold, service c=64: 300 non-2xx, 0 socket "
        "errors"
    }
    with pytest.raises(GateFailed, match="service c=64: 300 non-2xx"):
        enforce(gate(erring, baseline_of(result()), MARGINS))


def test_socket_errors_fail_but_not_in_the_busy_hold() -> None:
    dropped = result()
    dropped.replicas[1] = dataclasses.replace(dropped.replicas[1], socket_errors=12)
    held = dataclasses.replace(result(), holds=[hold("busy", errors=4000)])
    idle_failed = dataclasses.replace(result(), holds=[hold("idle", errors=3)])

    assert "every answer 2xx" in failing_checks(dropped)
    assert failing_checks(held) == {}
    assert (
        "idle hold: 3 of 10000 connections failed"
        in failing_checks(idle_failed)["every answer 2xx"]
    )


def test_a_request_unanswered_for_the_whole_run_fails_only_below_overload() -> None:
    # result() sweeps 1 and 64 connections, 64 being the reference; add an overload point.
    def with_1024(errors: int, timeouts: int) -> BenchResult:
        bench = result()
        bench.points.append(
            dataclasses.replace(
                point("service", 1024, 2000, 5000), socket_errors=errors, timeouts=timeouts
            )
        )
        return bench

    waited = failing_checks(with_1024(errors=1, timeouts=1))
    reset = failing_checks(with_1024(errors=2, timeouts=1))
    slow_at_reference = result()
    slow_at_reference.points[2] = dataclasses.replace(
        slow_at_reference.points[2], socket_errors=1, timeouts=1
    )

    assert waited == {}
    evidence = {c.id: c.evidence for c in absolute_checks(with_1024(1, 1))}["BENCH-ANSWERS"]
    assert evidence.endswith("(above 64 connections, reported, not failed): service c=1024: 1")
    assert reset == {
        "every answer 2xx": "9 runs outside the busy hold, service c=1024: 0 non-2xx, 2 socket "
        "errors"
    }
    assert (
        "service c=64: 0 non-2xx, 1 socket errors"
        in failing_checks(slow_at_reference)["every answer 2xx"]
    )


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
    ],
)
@pytest.mark.parametrize("kind", ["busy", "idle"])
def test_a_hold_the_service_did_not_come_through_fails(
    survival: Survival, text: str, kind: str
) -> None:
    bench = dataclasses.replace(result(), holds=[hold(kind, survival=survival)])

    assert failing_checks(bench) == {
        f"the {kind} hold": f"through the {kind} hold of 10000 connections the service {text}"
    }


@pytest.mark.parametrize("what", ["replicas", "workers"])
def test_two_that_do_not_scale_fail(what: str) -> None:
    flat = dataclasses.replace(
        result(), **{what: [point(f"{what}-1", 64, 1500, 50), point(f"{what}-2", 64, 1600, 45)]}
    )

    assert failing_checks(flat) == {
        f"{what} scaling": f"1 -> 2 {what} scaled at 0.53 (at least 0.6)"
    }


def test_a_flat_soak_passes_with_or_without_a_baseline() -> None:
    flat = dataclasses.replace(result(), soak=soak(0.0, noise=2 * MIB))

    for baseline in (None, baseline_of(result())):
        verdict = gate(flat, baseline, MARGINS)
        assert verdict["ok"]
        assert verdict["checks"][-1]["title"] == "soak memory slope"


def test_memory_that_climbs_over_the_soak_fails_even_without_a_baseline(tmp_path: Path) -> None:
    # 64 connections kept for every 5-second run at ~15 kB each: ~11 MiB a minute.
    leaking = dataclasses.replace(result(), soak=soak(11.0))

    verdict = gate(leaking, None, MARGINS)
    with pytest.raises(GateFailed) as failure:
        enforce(verdict, tmp_path / "baseline.json")

    assert not verdict["ok"]
    assert "climbed 11.00 MiB/min (at most 2)" in str(failure.value)
    assert not gate(leaking, baseline_of(result()), MARGINS, accept=True)["ok"]


# ---- baselines ---------------------------------------------------------------------------------


def test_accept_writes_a_baseline_the_gate_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "bench-baseline.json"
    write_baseline(result(service_rps=1500), path)
    data = json.loads(path.read_text())
    assert data["fraction"] == 0.375
    assert data["reference_connections"] == 64
    assert data["memory"] == 30 * MIB
    assert data["accepted_with"] == "doit bench accept=1"
    assert read_baseline(path).figures.fraction == 0.375  # type: ignore[union-attr]
    assert gate(result(service_rps=1500), read_baseline(path), MARGINS)["ok"]


def test_a_broken_baseline_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(ReportError, match="accept=1"):
        read_baseline(tmp_path / "b.json")
    assert read_baseline(tmp_path / "missing.json") is None


def test_a_machine_gates_against_the_reference_only_when_it_is_of_the_same_kind(
    tmp_path: Path,
) -> None:
    here = result().machine
    reference = tmp_path / "bench-baseline.json"
    write_baseline(result(), reference)

    assert baseline_for(here, reference=reference, local=tmp_path / "b") == reference
    other = {**here, "cpus": 64, "memory_gib": 256}
    assert baseline_for(other, reference=reference, local=tmp_path / "b") == (
        tmp_path / "b" / "linux-x86-64-64cpu-amd-epyc-256gib.json"
    )
    assert machine_key(here) == "linux-x86-64-2cpu-amd-epyc-24gib"
    assert baseline_for(here, reference=tmp_path / "none.json", local=tmp_path / "b") == (
        tmp_path / "b" / f"{machine_key(here)}.json"
    )


# ---- the service benchmark's targets ---------------------------------------------------------


def with_stock(service: float, stock: float, service_p99: float = 40.0) -> BenchResult:
    bench = result()
    bench.targets = ["service", "stock", "ceiling"]
    bench.rounds = [round_(service, 4000, service_p99, 20, stock=stock) for _ in range(3)]
    return bench


def test_targets_met_by_a_fast_lean_service() -> None:
    bench = with_stock(3100, 2000, service_p99=30.0)  # 1.55x stock, 0.775 of the ceiling
    bench.holds = [hold("idle", mem_peak=100 * MIB)]

    verdicts = {v.name: (v.met, v.text) for v in targets(bench)}

    assert verdicts == {
        "throughput": (True, "throughput 1.55x stock (target >= 1.5x)"),
        "p99": (True, "p99 0.50x stock (target <= 0.6x)"),
        "share of the ceiling": (True, "share of the ceiling 0.78x ceiling (target >= 0.75x)"),
        "memory": (True, "memory at 64 connections 30.0 MiB (target <= 50 MiB)"),
        "idle hold memory": (
            True,
            "peak memory holding 10000 idle connections 100.0 MiB (target <= 120 MiB)",
        ),
    }


def test_targets_missed_are_named_with_their_figures() -> None:
    bench = with_stock(2400, 2000)  # 1.2x stock, 0.6 of the ceiling, p99 0.67x stock
    bench.holds = [hold("idle", mem_peak=240 * MIB)]

    missed = {v.name for v in targets(bench) if not v.met}

    assert missed == {"throughput", "p99", "share of the ceiling", "idle hold memory"}
