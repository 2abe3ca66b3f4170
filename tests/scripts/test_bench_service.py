"""The service benchmark: options, the process-tree readings, the verdicts, one real round."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType

import pytest

from app.config import Settings as AppSettings
from app.headers import security_headers
from scripts import bench_service as bench
from scripts import wrk
from scripts.baselines import stock_app
from scripts.errors import ParamError
from scripts.settings import Settings

FIXTURE = Path(__file__).parent / "fixtures" / "wrk" / "latency_ok.txt"


def summary(name: str, rps: float, p99: float, rss: int | None = None) -> bench.Summary:
    return bench.Summary(
        target=name, rps=rps, p50=p99 / 2, p99=p99, peak_rss=rss, cpu_per_request=1e-4, failures=0
    )


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        ({"duration": 0.5}, "--duration"),
        ({"duration": 301}, "--duration"),
        ({"rounds": 0}, "--rounds"),
        ({"connections": 1, "threads": 2}, "--connections"),
        ({"targets": ("service", "nginx")}, "--targets"),
        ({"targets": ()}, "--targets"),
    ],
)
def test_options_out_of_bounds_are_refused(options: dict[str, object], flag: str) -> None:
    with pytest.raises(ParamError) as caught:
        bench.Options(**options)  # type: ignore[arg-type]

    assert caught.value.name == flag


def test_rounds_rotate_so_no_server_always_goes_first() -> None:
    order = list(bench.rotations(("service", "stock", "ceiling"), 3))

    firsts = [next(name for number, name in order if number == n) for n in (1, 2, 3)]
    assert firsts == ["service", "stock", "ceiling"]
    assert len(order) == 9


def test_the_summary_takes_medians_and_the_highest_memory_peak() -> None:
    runs = [
        bench.Measurement(
            target="service",
            round=n,
            requests=1000,
            rps=rps,
            p50=0.01,
            p99=p99,
            failures=0,
            peak_rss=rss,
            cpu_seconds=0.5,
            exit_code=0,
        )
        for n, (rps, p99, rss) in enumerate([(100, 0.03, 10), (300, 0.01, 30), (200, 0.02, 20)])
    ]

    result = bench.Summary.of("service", runs)

    assert (result.rps, result.p99, result.peak_rss) == (200, 0.02, 30)
    assert result.cpu_per_request == pytest.approx(0.0005)


def measurement(target: str, number: int, rps: float, p99: float) -> bench.Measurement:
    return bench.Measurement(
        target=target,
        round=number,
        requests=1000,
        rps=rps,
        p50=p99 / 2,
        p99=p99,
        failures=0,
        peak_rss=None,
        cpu_seconds=None,
        exit_code=0,
    )


def test_ratios_are_paired_by_round() -> None:
    # Round 2 ran while a neighbour slowed everything down; pairing cancels it out.
    runs = [
        measurement("service", 1, 1300, 0.008),
        measurement("stock", 1, 1000, 0.010),
        measurement("service", 2, 650, 0.016),
        measurement("stock", 2, 500, 0.020),
        measurement("service", 3, 1400, 0.008),
        measurement("stock", 3, 1000, 0.010),
    ]

    assert bench.paired_ratio(runs, "rps", "service", "stock") == pytest.approx(1.3)
    assert bench.paired_ratio(runs, "p99", "service", "stock") == pytest.approx(0.8)
    assert bench.paired_ratio(runs, "rps", "service", "ceiling") is None


def test_the_verdicts_follow_the_issue_targets() -> None:
    runs = [
        measurement("service", 1, 1300, 0.008),
        measurement("stock", 1, 1000, 0.010),
        measurement("ceiling", 1, 2600, 0.005),
    ]
    summaries = {
        "service": summary("service", 1300, 0.008, rss=40 * bench.MIB),
        "stock": summary("stock", 1000, 0.010),
        "ceiling": summary("ceiling", 2600, 0.005),
    }

    ratios, verdicts = bench.judge(summaries, runs)

    assert ratios == {
        "service/stock rps": pytest.approx(1.3),
        "service/stock p99": pytest.approx(0.8),
        "service/ceiling rps": pytest.approx(0.5),
        "stock/ceiling rps": pytest.approx(1000 / 2600),
    }
    assert {v.name: v.met for v in verdicts} == {"throughput": True, "p99": True, "rss": True}


def test_a_missed_target_says_so() -> None:
    runs = [measurement("service", 1, 1200, 0.0081), measurement("stock", 1, 1000, 0.010)]
    summaries = {
        "service": summary("service", 1200, 0.0081, rss=51 * bench.MIB),
        "stock": summary("stock", 1000, 0.010),
    }

    _, verdicts = bench.judge(summaries, runs)

    assert {v.name: v.met for v in verdicts} == {"throughput": False, "p99": False, "rss": False}
    report = bench.Report(
        options=bench.Options(), measurements=runs, summaries=summaries, verdicts=verdicts
    )
    assert "MISSED rps 1.20x stock (target >= 1.25x)" in bench.render(report)


def test_the_stock_app_sends_the_same_security_headers_as_the_service() -> None:
    async def fetch() -> dict[str, str]:
        response = await stock_app.app.test_client().get("/")
        return {name.lower(): value for name, value in response.headers.items()}

    stock_headers = asyncio.run(fetch())

    for name, value in security_headers(AppSettings()):
        assert stock_headers[name.decode()] == value.decode(), name


def test_the_process_tree_memory_and_cpu_of_a_parent_and_its_child() -> None:
    code = (
        "import subprocess, sys; "
        "subprocess.run([sys.executable, '-c', 'import time; time.sleep(30)'])"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        tree = bench.process_tree(parent.pid)
        while len(tree) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            tree = bench.process_tree(parent.pid)

        assert tree[0] == parent.pid
        assert len(tree) == 2
        both = bench.rss_bytes(tree)
        alone = bench.rss_bytes(tree[:1])
        assert both is not None
        assert alone is not None
        assert both > alone > 1 * bench.MIB
        assert (bench.cpu_seconds(tree) or 0) >= 0
    finally:
        for pid in reversed(bench.process_tree(parent.pid)):
            os.kill(pid, 15)
        parent.wait(timeout=10)


def test_a_vanished_process_reads_as_unknown() -> None:
    assert bench.rss_bytes([2**22 + 12345]) is None
    assert bench.cpu_seconds([2**22 + 12345]) is None


def fake_load(url: str, **_: object) -> wrk.WrkResult:
    """Stands in for wrk: a few real requests, then the figures of a real wrk report."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    for _ in range(3):
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"Hello World"
        connection.close()
    return wrk.parse(FIXTURE.read_text())


def test_one_round_against_the_three_real_servers(tmp_path: Path) -> None:
    fake_wrk = tmp_path / "wrk"
    fake_wrk.write_text("#!/bin/sh\nexit 0\n")
    fake_wrk.chmod(0o755)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"
    settings = Settings(tool_environ=MappingProxyType({"PATH": path}))
    options = bench.Options(duration=1, warmup=1, rounds=1)

    report = bench.benchmark(options, settings, load=fake_load)

    assert [m.target for m in report.measurements] == ["service", "stock", "ceiling"]
    by_target = {m.target: m for m in report.measurements}
    assert by_target["service"].exit_code == 0
    assert by_target["ceiling"].exit_code == 0
    # the CLI's supervisor and worker together outweigh the single in-process server
    assert (by_target["stock"].peak_rss or 0) > (by_target["ceiling"].peak_rss or 0) > 0
    assert set(report.ratios) >= {"service/stock rps", "service/stock p99"}
    data = json.loads(bench.to_json(report))
    assert data["measurements"][0]["cpu_per_request"] is not None


def test_main_reports_a_bad_option_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--rounds", "0"]) == 1

    assert capsys.readouterr().err == "bench_service: --rounds must be a number 1-20, got 0\n"
