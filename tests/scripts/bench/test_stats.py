"""Stats readings turned into CPU cores and memory peaks (recorded engine data, no Docker)."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.bench.report import MIB
from scripts.bench.stats import Sample, read_sample, usage_between

# One reading of the engine's stats API on cgroup v1 (trimmed), as docker 20.10 returns it.
STATS_V1: dict[str, Any] = {
    "memory_stats": {
        "usage": 34177024,
        "max_usage": 45797376,
        "stats": {"total_inactive_file": 4096, "total_rss": 32989184, "cache": 397312},
        "limit": 134217728,
    },
    "cpu_stats": {"cpu_usage": {"total_usage": 11254067121}, "online_cpus": 2},
}
# The same on cgroup v2: no max_usage, anon instead of rss.
STATS_V2: dict[str, Any] = {
    "memory_stats": {"usage": 30000000, "stats": {"inactive_file": 1000000, "anon": 25000000}},
    "cpu_stats": {"cpu_usage": {"total_usage": 5_000_000_000}},
}


def test_a_stats_reading_is_the_working_set_docker_stats_shows() -> None:
    v1 = read_sample(STATS_V1, "c1", 10.0)
    v2 = read_sample(STATS_V2, "c2", 11.0)
    assert v1 == Sample(
        at=10.0, container="c1", cpu_ns=11254067121, working_set=34172928, rss=32989184
    )
    assert v2 is not None
    assert (v2.working_set, v2.rss) == (29000000, 25000000)
    assert read_sample({"memory_stats": {}, "cpu_stats": {}}, "gone", 1.0) is None


def test_usage_is_mean_cores_and_peak_memory_inside_the_window() -> None:
    samples = [
        Sample(at=0.0, container="a", cpu_ns=0, working_set=30 * MIB, rss=28 * MIB),
        Sample(at=1.0, container="a", cpu_ns=900_000_000, working_set=40 * MIB, rss=38 * MIB),
        Sample(at=2.0, container="a", cpu_ns=1_800_000_000, working_set=35 * MIB, rss=33 * MIB),
        Sample(at=1.0, container="b", cpu_ns=0, working_set=20 * MIB, rss=19 * MIB),
        Sample(at=2.0, container="b", cpu_ns=500_000_000, working_set=22 * MIB, rss=21 * MIB),
        Sample(at=9.0, container="a", cpu_ns=9_000_000_000, working_set=99 * MIB, rss=98 * MIB),
    ]
    one = usage_between(samples, 0.0, 2.0, {"a"})
    both = usage_between(samples, 0.0, 2.0, {"a", "b"})
    assert one.cpu_cores == pytest.approx(0.9)
    assert (one.mem_peak, one.rss_peak) == (40 * MIB, 38 * MIB)
    assert both.cpu_cores == pytest.approx(1.4)  # replicas add up
    assert usage_between(samples, 3.0, 4.0, {"a"}).cpu_cores is None


def test_steady_memory_is_the_median_after_the_run_settled() -> None:
    def sample(at: float, mib: int) -> Sample:
        return Sample(at=at, container="a", cpu_ns=int(at * 1e9), working_set=mib * MIB, rss=0)

    # Connections opening in the first second; a health check's interpreter at 3 s.
    samples = [sample(0.2, 20), sample(1.2, 33), sample(2.2, 34), sample(3.2, 42), sample(4.2, 34)]

    usage = usage_between(samples, 0.0, 5.0, {"a"})

    assert usage.mem_steady == 34 * MIB
    assert usage.mem_peak == 42 * MIB
    assert usage_between(samples[:1], 0.0, 5.0, {"a"}).mem_steady == 20 * MIB  # nothing later
