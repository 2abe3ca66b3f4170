"""The in-container probe, run here by this machine's Python against processes of the test's.

In a container it runs as ``docker exec ... python3 -c PROBE`` (tests/docker cover that); the
code is the same, and here its PID arguments point it at a process the test controls.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from scripts.core.errors import DeployError
from scripts.security.probe import PROBE, Holdings, probe

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the probe reads Linux's /proc")


def run_probe(*pids: int) -> Holdings:
    output = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, pids)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return Holdings.from_output(output)


def test_a_socket_whose_peer_closed_counts_as_close_wait() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        with accepted:
            before = run_probe(os.getpid())
            client.close()  # the peer hangs up; this process still holds its end

            after = run_probe(os.getpid())

    assert (before.close_wait, after.close_wait) == (0, 1)
    assert after.processes == 1
    assert after.fds >= 3
    assert after.rss > 1 << 20


def test_descriptors_and_memory_are_summed_over_the_processes_named() -> None:
    one = run_probe(os.getpid())
    two = run_probe(os.getpid(), os.getpid())

    assert two.processes == 2
    assert two.fds >= 2 * one.fds - 2  # the probe's own reads may differ by a descriptor
    assert two.rss >= one.rss


def test_a_process_that_is_gone_is_left_out() -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert run_probe(int(gone)).processes == 0


class FakeContainer:
    """What :func:`probe` uses of a docker container: exec_run and name."""

    name = "zp-app-1"

    def __init__(self, code: int, output: bytes) -> None:
        self.result = SimpleNamespace(exit_code=code, output=output)

    def exec_run(self, cmd: list[str], **_: Any) -> tuple[int, bytes]:
        assert cmd[:2] == ["/usr/bin/python3", "-c"]
        return self.result.exit_code, self.result.output


def test_probe_reads_the_last_line_the_container_printed() -> None:
    line = json.dumps({"processes": 1, "fds": 9, "rss": 44 << 20, "close_wait": 2})

    holdings = probe(FakeContainer(0, f"warning\n{line}\n".encode()))  # type: ignore[arg-type]

    assert holdings == Holdings(processes=1, fds=9, rss=44 << 20, close_wait=2)


def test_a_probe_that_cannot_run_or_finds_no_server_is_one_clear_error() -> None:
    with pytest.raises(DeployError, match="exited 126"):
        probe(FakeContainer(126, b"exec failed"))  # type: ignore[arg-type]
    empty = json.dumps({"processes": 0, "fds": 0, "rss": 0, "close_wait": 0}).encode()
    with pytest.raises(DeployError, match="no server process"):
        probe(FakeContainer(0, empty))  # type: ignore[arg-type]
