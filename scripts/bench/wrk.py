"""Running wrk and reading what it prints.

:func:`run` drives one wrk run (argv list, timeout, ``ToolMissing`` naming how to install wrk)
and :func:`parse` turns wrk's text report into a :class:`WrkResult`: requests per second,
latency percentiles (with ``--latency``), bytes read, non-2xx/3xx answers and socket errors.
wrk prints sizes in binary units (1 KB = 1024 B) and times as ``us``/``ms``/``s``/``m``/``h``;
the result holds plain bytes and seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from scripts.core import proc
from scripts.core.errors import ParamError, ReportError

#: Seconds wrk gets beyond the test duration to connect, finish and print.
RUN_MARGIN: Final = 30.0

_TIME_UNITS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS: Final = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}

_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?)"
_RUNNING = re.compile(r"^Running (\S+) test @ (\S+)\s*$", re.MULTILINE)
_SHAPE = re.compile(r"^\s*([0-9]+) threads and ([0-9]+) connections\s*$", re.MULTILINE)
_LATENCY = re.compile(
    rf"^\s*Latency\s+{_NUMBER}(us|ms|s|m|h)\s+{_NUMBER}(us|ms|s|m|h)\s+{_NUMBER}(us|ms|s|m|h)",
    re.MULTILINE,
)
_PERCENTILE = re.compile(rf"^\s*([0-9]+(?:\.[0-9]+)?)%\s+{_NUMBER}(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTALS = re.compile(
    rf"^\s*([0-9]+) requests in {_NUMBER}(us|ms|s|m|h), {_NUMBER}(B|KB|MB|GB|TB) read\s*$",
    re.MULTILINE,
)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses: ([0-9]+)\s*$", re.MULTILINE)
_SOCKET_ERRORS = re.compile(
    r"^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)\s*$",
    re.MULTILINE,
)
_RPS = re.compile(rf"^Requests/sec:\s+{_NUMBER}\s*$", re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class SocketErrors:
    """The socket errors wrk counted, by kind."""

    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0

    @property
    def total(self) -> int:
        """All socket errors together."""
        return self.connect + self.read + self.write + self.timeout


@dataclass(frozen=True, kw_only=True)
class WrkResult:
    """One wrk run, in bytes and seconds."""

    url: str
    threads: int
    connections: int
    requests: int
    duration: float
    bytes_read: int
    requests_per_second: float
    latency_avg: float
    latency_stdev: float
    latency_max: float
    #: Latency by percentile (50, 75, 90, 99); empty unless wrk ran with ``--latency``.
    latency_percentiles: Mapping[float, float] = field(default_factory=lambda: MappingProxyType({}))
    non_2xx_3xx: int = 0
    socket_errors: SocketErrors = field(default_factory=SocketErrors)

    @property
    def p50(self) -> float | None:
        """Median latency in seconds, when wrk reported percentiles."""
        return self.latency_percentiles.get(50.0)

    @property
    def p99(self) -> float | None:
        """99th-percentile latency in seconds, when wrk reported percentiles."""
        return self.latency_percentiles.get(99.0)

    @property
    def failures(self) -> int:
        """Answers that were not 2xx/3xx plus socket errors: zero for a clean run."""
        return self.non_2xx_3xx + self.socket_errors.total


def seconds(value: str, unit: str) -> float:
    """A wrk time (``12.5`` ``ms``) in seconds."""
    return float(value) * _TIME_UNITS[unit]


def size_bytes(value: str, unit: str) -> int:
    """A wrk size (``2.48`` ``MB``, binary units) in bytes."""
    return round(float(value) * _SIZE_UNITS[unit])


def parse(output: str) -> WrkResult:
    """Read wrk's report; :class:`ReportError` when it is not one."""
    running = _RUNNING.search(output)
    shape = _SHAPE.search(output)
    latency = _LATENCY.search(output)
    totals = _TOTALS.search(output)
    rps = _RPS.search(output)
    missing = [
        name
        for name, match in (
            ("'Running ... test @' line", running),
            ("'threads and connections' line", shape),
            ("Latency line", latency),
            ("'requests in' line", totals),
            ("Requests/sec line", rps),
        )
        if match is None
    ]
    if missing or not (running and shape and latency and totals and rps):
        first = output.strip().splitlines()[0] if output.strip() else "(empty)"
        raise ReportError(
            f"wrk output lacks its {', '.join(missing)}; it starts with {first[:120]!r} "
            "(did wrk fail to connect?)"
        )
    percentiles = {
        float(match.group(1)): seconds(match.group(2), match.group(3))
        for match in _PERCENTILE.finditer(output)
    }
    non_2xx = _NON_2XX.search(output)
    socket = _SOCKET_ERRORS.search(output)
    return WrkResult(
        url=running.group(2),
        threads=int(shape.group(1)),
        connections=int(shape.group(2)),
        requests=int(totals.group(1)),
        duration=seconds(totals.group(2), totals.group(3)),
        bytes_read=size_bytes(totals.group(4), totals.group(5)),
        requests_per_second=float(rps.group(1)),
        latency_avg=seconds(latency.group(1), latency.group(2)),
        latency_stdev=seconds(latency.group(3), latency.group(4)),
        latency_max=seconds(latency.group(5), latency.group(6)),
        latency_percentiles=MappingProxyType(percentiles),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=SocketErrors(
            connect=int(socket.group(1)),
            read=int(socket.group(2)),
            write=int(socket.group(3)),
            timeout=int(socket.group(4)),
        )
        if socket
        else SocketErrors(),
    )


@dataclass(frozen=True, kw_only=True)
class WrkLoad:
    """One wrk run: what it loads and how; impossible values are a :class:`ParamError`."""

    url: str
    connections: int
    duration: float
    threads: int = 1
    timeout: float | None = None
    latency: bool = True
    headers: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ParamError("url", self.url, "an http:// or https:// URL")
        if self.threads < 1:
            raise ParamError("threads", self.threads, "at least 1")
        if self.connections < self.threads:
            raise ParamError(
                "connections", self.connections, f"at least the thread count ({self.threads})"
            )
        if self.duration < 1:
            raise ParamError("duration", self.duration, "at least 1 second")

    def argv(self) -> list[str]:
        """The wrk command line."""
        command = ["wrk", "-t", str(self.threads), "-c", str(self.connections)]
        command += ["-d", f"{round(self.duration)}s"]
        if self.timeout is not None:
            command += ["--timeout", f"{max(1, round(self.timeout))}s"]
        if self.latency:
            command.append("--latency")
        for header in self.headers:
            command += ["-H", header]
        command.append(self.url)
        return command


def run(load: WrkLoad, *, env: Mapping[str, str]) -> WrkResult:
    """Load ``load.url`` with wrk for ``load.duration`` seconds; what it measured."""
    result = proc.run(
        load.argv(),
        env=env,
        timeout=round(load.duration) + RUN_MARGIN,
        hint=f"is something answering on {load.url}?",
    )
    return parse(result.stdout)
