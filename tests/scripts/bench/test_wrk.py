"""wrk's runner and report reader, against reports real wrk 4.1.0 printed on this project.

The fixtures in ``tests/scripts/bench/fixtures/`` are wrk's own output, captured against the
service and the ceiling on 127.0.0.1 (one of them while the server was killed mid-run). The
runner is driven through a stand-in ``wrk`` on PATH that records its argv.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from scripts.bench import wrk
from scripts.core.errors import ParamError, ReportError, ToolFailed, ToolMissing

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_a_latency_report() -> None:
    result = wrk.parse(fixture("latency_ok.txt"))

    assert result.url == "http://127.0.0.1:9103/"
    assert (result.threads, result.connections) == (1, 64)
    assert (result.requests, result.duration) == (8876, pytest.approx(3.02))
    assert result.requests_per_second == pytest.approx(2936.72)
    assert result.bytes_read == round(7.36 * 1024 * 1024)
    assert result.latency_avg == pytest.approx(0.02170)
    assert result.latency_stdev == pytest.approx(0.00649)
    assert result.latency_max == pytest.approx(0.09356)
    assert dict(result.latency_percentiles) == {
        50.0: pytest.approx(0.01973),
        75.0: pytest.approx(0.02575),
        90.0: pytest.approx(0.03014),
        99.0: pytest.approx(0.04215),
    }
    assert (result.p50, result.p99) == (pytest.approx(0.01973), pytest.approx(0.04215))
    assert result.failures == 0


def test_a_report_from_two_threads() -> None:
    result = wrk.parse(fixture("latency_2threads.txt"))

    assert (result.threads, result.connections, result.requests) == (2, 16, 6231)
    assert result.p99 == pytest.approx(0.01314)


def test_without_latency_there_are_no_percentiles() -> None:
    result = wrk.parse(fixture("no_latency.txt"))

    assert result.latency_percentiles == {}
    assert result.p50 is None
    assert result.requests_per_second == pytest.approx(3040.57)


def test_non_2xx_answers_count_as_failures() -> None:
    result = wrk.parse(fixture("non2xx.txt"))

    assert result.non_2xx_3xx == 3173
    assert result.failures == 3173


def test_socket_errors_are_read_by_kind() -> None:
    result = wrk.parse(fixture("socket_errors.txt"))

    errors = result.socket_errors
    assert (errors.connect, errors.read, errors.write, errors.timeout) == (0, 31, 66373, 0)
    assert result.failures == 66404


def test_a_run_that_completed_nothing_reads_as_zero() -> None:
    result = wrk.parse(fixture("all_timeouts.txt"))

    assert (result.requests, result.requests_per_second, result.bytes_read) == (0, 0.0, 0)
    assert result.p99 == 0.0


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("", "'Running ... test @' line"),
        ("unable to connect to 127.0.0.1:9 Connection refused\n", "Requests/sec line"),
        ("Usage: wrk <options> <url>\n  Options:\n", "Latency line"),
    ],
)
def test_anything_else_is_a_report_error_saying_what_is_missing(text: str, missing: str) -> None:
    with pytest.raises(ReportError, match="wrk output lacks") as caught:
        wrk.parse(text)

    assert missing in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [("250", "us", 0.00025), ("1.5", "ms", 0.0015), ("2", "s", 2.0), ("1.5", "m", 90.0)],
)
def test_times(value: str, unit: str, expected: float) -> None:
    assert wrk.seconds(value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [("512", "B", 512), ("1.5", "KB", 1536), ("2.00", "MB", 2 * 1024 * 1024), ("1", "GB", 1 << 30)],
)
def test_sizes_are_binary(value: str, unit: str, expected: int) -> None:
    assert wrk.size_bytes(value, unit) == expected


def test_the_command_line() -> None:
    assert wrk.WrkLoad(
        url="http://127.0.0.1:8080/",
        connections=64,
        duration=10,
        threads=2,
        timeout=5,
        headers=["Host: example.com"],
    ).argv() == [
        "wrk",
        "-t",
        "2",
        "-c",
        "64",
        "-d",
        "10s",
        "--timeout",
        "5s",
        "--latency",
        "-H",
        "Host: example.com",
        "http://127.0.0.1:8080/",
    ]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"url": "127.0.0.1:8080"}, "url"),
        ({"threads": 0}, "threads"),
        ({"connections": 1, "threads": 2}, "connections"),
        ({"duration": 0.5}, "duration"),
    ],
)
def test_impossible_runs_are_refused_before_starting(kwargs: dict[str, object], name: str) -> None:
    options: dict[str, object] = {
        "url": "http://127.0.0.1:8080/",
        "connections": 4,
        "duration": 2,
        "threads": 1,
    }
    options.update(kwargs)

    with pytest.raises(ParamError) as caught:
        wrk.WrkLoad(**options)  # type: ignore[arg-type]

    assert caught.value.name == name


def fake_wrk(directory: Path, *, output: str, exit_code: int = 0) -> dict[str, str]:
    """A stand-in ``wrk`` that records its argv and prints ``output``; the env to find it."""
    script = directory / "wrk"
    (directory / "report.txt").write_text(output)
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        "here = pathlib.Path(sys.argv[0]).parent\n"
        "(here / 'argv.txt').write_text('\\n'.join(sys.argv[1:]))\n"
        "text = (here / 'report.txt').read_text()\n"
        f"(sys.stdout if {exit_code} == 0 else sys.stderr).write(text)\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_run_drives_wrk_and_reads_its_report(tmp_path: Path) -> None:
    env = fake_wrk(tmp_path, output=fixture("latency_ok.txt"))

    result = wrk.run(wrk.WrkLoad(url="http://127.0.0.1:9103/", connections=64, duration=3), env=env)

    assert result.requests == 8876
    assert (tmp_path / "argv.txt").read_text().split("\n") == [
        "-t",
        "1",
        "-c",
        "64",
        "-d",
        "3s",
        "--latency",
        "http://127.0.0.1:9103/",
    ]


#: A run against the discard port, where nothing answers.
REFUSED = wrk.WrkLoad(url="http://127.0.0.1:9/", connections=4, duration=1)


def test_a_failing_wrk_is_a_tool_failure_with_its_last_line(tmp_path: Path) -> None:
    env = fake_wrk(
        tmp_path, output="unable to connect to 127.0.0.1:9 Connection refused\n", exit_code=1
    )

    with pytest.raises(ToolFailed, match="Connection refused") as caught:
        wrk.run(REFUSED, env=env)

    assert "is something answering on http://127.0.0.1:9/?" in str(caught.value)


def test_a_missing_wrk_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="apt-get install wrk"):
        wrk.run(REFUSED, env={"PATH": str(tmp_path)})
