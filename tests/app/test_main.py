"""``python -m app``: a start-up problem is exit code 2 and one line on stderr."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_bad_setting_is_exit_2_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_PORT", "abc")

    assert main([]) == 2

    captured = capsys.readouterr()
    assert captured.err == "APP_PORT must be an integer 1-65535, got 'abc'\n"
    assert captured.out == ""


@pytest.mark.usefixtures("json_logs")  # main() configures logging; put it back afterwards
def test_a_taken_port_is_exit_2_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("APP_HOST", "127.0.0.1")
        monkeypatch.setenv("APP_PORT", str(taken.getsockname()[1]))
        monkeypatch.setenv("APP_LOG_LEVEL", "error")

        assert main([]) == 2

    err = capsys.readouterr().err
    assert err.startswith("cannot listen on 127.0.0.1:")
    assert err.count("\n") == 1


@pytest.mark.usefixtures("json_logs")
def test_access_without_pyjwt_is_exit_2_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)
    monkeypatch.setitem(sys.modules, "jwt.algorithms", None)
    monkeypatch.setenv("APP_ACCESS_TEAM", "myteam")
    monkeypatch.setenv("APP_ACCESS_AUD", "a" * 64)
    monkeypatch.setenv("APP_LOG_LEVEL", "error")

    assert main([]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "`access` extra" in err
    assert "`doit image extras=1`" in err


def test_the_module_runs_as_a_program_and_prints_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"APP_WORKERS": "zero", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == "APP_WORKERS must be an integer 1-64, got 'zero'\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_help_mentions_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    assert "APP_*" in capsys.readouterr().out


def test_routes_lists_every_route_and_serves_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--routes"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "APP_PORT": "1"},  # a port it would fail to bind
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "GET,HEAD,OPTIONS /",
        "GET,HEAD,OPTIONS /healthz",
        "GET,HEAD,OPTIONS /readyz",
    ]
