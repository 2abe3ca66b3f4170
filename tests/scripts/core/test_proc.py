"""Running external programs: missing tools, failures, timeouts, and the environment they get."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from scripts.core import proc
from scripts.core.errors import ToolFailed, ToolMissing, ToolTimeout


def path_with(directory: Path) -> str:
    """A PATH holding ``directory`` first, then the system's (for sleep, env, cat)."""
    return f"{directory}:/usr/bin:/bin"


def program(directory: Path, name: str, body: str) -> Path:
    """A shell script called ``name`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_a_missing_tool_names_itself_and_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as caught:
        proc.run(["trivy", "--version"], env={"PATH": str(tmp_path)}, timeout=5)
    assert caught.value.tool == "trivy"
    assert str(caught.value).startswith("trivy is not installed or not on PATH; install it:")
    assert "trivy.dev" in str(caught.value)
    with pytest.raises(ToolMissing, match="install it: install frobnicate"):
        proc.which("frobnicate", {"PATH": str(tmp_path)})


def test_a_missing_absolute_path_is_tool_missing_too(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="is not installed"):
        proc.run([str(tmp_path / "docker"), "version"], env={}, timeout=5)


def test_a_failure_carries_the_exit_code_and_the_last_line_printed(tmp_path: Path) -> None:
    program(
        tmp_path,
        "tool",
        "echo progress\necho 'first problem' >&2\necho 'fatal: disk full' >&2\nexit 3\n",
    )
    with pytest.raises(ToolFailed) as caught:
        proc.run(["tool"], env={"PATH": str(tmp_path)}, timeout=5, hint="free some space")
    failure = caught.value
    assert str(failure) == "tool exited 3: fatal: disk full (free some space)"
    assert failure.returncode == 3
    assert failure.argv == ["tool"]
    assert "first problem" in failure.output


def test_a_failure_that_printed_only_to_stdout_shows_that(tmp_path: Path) -> None:
    program(tmp_path, "tool", "echo 'error: bad input'\nexit 1\n")
    with pytest.raises(ToolFailed, match=r"^tool exited 1: error: bad input$"):
        proc.run(["tool"], env={"PATH": str(tmp_path)}, timeout=5)


def test_without_check_a_failure_is_a_result(tmp_path: Path) -> None:
    program(tmp_path, "tool", "echo out\necho err >&2\nexit 2\n")
    result = proc.run(["tool", "a b"], env={"PATH": str(tmp_path)}, timeout=5, check=False)
    assert (result.ok, result.returncode, result.stdout, result.stderr) == (
        False,
        2,
        "out\n",
        "err\n",
    )
    assert result.argv == ("tool", "a b")


def test_a_tool_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    program(tmp_path, "slow", "exec sleep 30\n")
    started = time.monotonic()
    with pytest.raises(ToolTimeout) as caught:
        proc.run(["slow", "--flag"], env={"PATH": path_with(tmp_path)}, timeout=0.3)
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith("slow did not finish within 0.3 s (slow --flag ...)")
    assert caught.value.timeout == 0.3


def test_the_tool_gets_exactly_the_environment_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "leaked-if-you-see-this")
    program(tmp_path, "envdump", "env\n")
    result = proc.run(["envdump"], env={"PATH": path_with(tmp_path), "ONLY_THIS": "1"}, timeout=5)
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert variables.get("ONLY_THIS") == "1"
    assert "CLOUDFLARE_API_TOKEN" not in variables
    assert "leaked-if-you-see-this" not in result.stdout


def test_input_and_cwd_reach_the_tool(tmp_path: Path) -> None:
    program(tmp_path / "bin", "tool", "pwd\ncat\n")
    result = proc.run(
        ["tool"],
        env={"PATH": path_with(tmp_path / "bin")},
        timeout=5,
        input="hello",
        cwd=str(tmp_path),
    )
    assert result.stdout == f"{tmp_path}\nhello"


def test_start_and_stop_a_background_program(tmp_path: Path) -> None:
    program(tmp_path, "server", "exec sleep 30\n")
    process = proc.start(["server"], env={"PATH": path_with(tmp_path)})
    assert process.poll() is None
    assert proc.stop(process, timeout=5) == -signal.SIGTERM
    assert proc.stop(process) == -signal.SIGTERM  # stopping twice is harmless
