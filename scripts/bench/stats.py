"""What containers use while they are under load: CPU and memory from the engine's stats.

The engine publishes one stats reading per container a second. Memory is the working set as
``docker stats`` shows it (cgroup usage less inactive page cache: a read-only root filesystem's
files are page cache charged to the container, and would otherwise count), and ``rss``; CPU is
the cumulative CPU time, turned into mean cores over a window. Works on cgroup v1 and v2.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import docker.errors
from docker.models.containers import Container

from scripts.bench.report import Usage

#: Seconds between the engine's stats readings (Docker publishes one a second).
STATS_PERIOD = 1.0
#: Seconds between calls of the sampler's ``on_tick`` (the progress bar).
TICK = 0.25
#: Seconds at the start of a run left out of its steady-state memory: connections opening,
#: buffers growing. What the run holds after that is what it needs.
SETTLE = 1.0


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One reading of one container's stats."""

    at: float
    container: str
    cpu_ns: int
    working_set: int
    rss: int


def read_sample(stats: Mapping[str, Any], container: str, at: float) -> Sample | None:
    """A :class:`Sample` from one stats reading (cgroup v1 or v2); None once it has stopped."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    usage = memory.get("usage")
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    if usage is None or cpu is None:
        return None
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    rss = detail.get("total_rss", detail.get("rss", detail.get("anon", 0)))
    return Sample(
        at=at,
        container=container,
        cpu_ns=int(cpu),
        working_set=int(usage) - int(inactive),
        rss=int(rss),
    )


def usage_between(samples: list[Sample], start: float, end: float, containers: set[str]) -> Usage:
    """Mean cores (summed over ``containers``), memory peaks and steady memory in a window.

    The steady memory is the median working set after the run's first SETTLE seconds: a
    health check's interpreter, alive for a moment every few seconds, is in the container's
    memory too, and a median leaves it out where a peak would not.
    """
    cores = 0.0
    have_cpu = False
    peak = 0
    rss = 0
    steady = 0
    for container in containers:
        window = [s for s in samples if s.container == container and start <= s.at <= end]
        if not window:
            continue
        peak = max(peak, *(s.working_set for s in window))
        rss = max(rss, *(s.rss for s in window))
        settled = [s.working_set for s in window if s.at >= start + SETTLE] or [
            window[-1].working_set
        ]
        steady += int(statistics.median(settled))
        first, last = window[0], window[-1]
        if last.at > first.at:
            cores += (last.cpu_ns - first.cpu_ns) / 1e9 / (last.at - first.at)
            have_cpu = True
    return Usage(
        cpu_cores=cores if have_cpu else None,
        mem_peak=peak or None,
        rss_peak=rss or None,
        mem_steady=steady or None,
    )


class Sampler:
    """Follows the watched containers' stats streams into :attr:`samples`, in threads.

    One thread per container follows its stream (asking for single readings instead waits a
    second each, so two containers would be read every two seconds); another calls ``on_tick``
    every TICK seconds with the time elapsed.
    """

    def __init__(
        self, containers: list[Container], on_tick: Callable[[float], None] | None = None
    ) -> None:
        self.samples: list[Sample] = []
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, args=(c,), name="stats", daemon=True)
            for c in containers
        ]
        self._threads.append(threading.Thread(target=self._tick, name="tick", daemon=True))

    def __enter__(self) -> Sampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=STATS_PERIOD * 3)

    def _follow(self, container: Container) -> None:
        try:
            for stats in container.stats(stream=True, decode=True):
                if isinstance(stats, dict):
                    sample = read_sample(stats, str(container.id), time.monotonic())
                    if sample is not None:
                        self.samples.append(sample)  # list.append is atomic: no lock
                if self._stop.is_set():
                    return
        except docker.errors.APIError:
            return  # the container went away: the run reports what was seen

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK):
            now = time.monotonic()
            if self._on_tick is not None:
                self._on_tick(now - last)
            last = now

    def usage(self, containers: list[Container], start: float, end: float) -> Usage:
        """What ``containers`` used between ``start`` and ``end`` (monotonic seconds)."""
        return usage_between(list(self.samples), start, end, {str(c.id) for c in containers})

    def timeline(self, container: Container, origin: float) -> list[tuple[float, int]]:
        """``container``'s working set over time: (seconds since ``origin``, bytes)."""
        ident = str(container.id)
        return [
            (round(s.at - origin, 2), s.working_set) for s in self.samples if s.container == ident
        ]
