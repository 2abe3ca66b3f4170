"""A short bench against the project's image: every phase runs, the report is written, nothing
is left behind. Durations are tiny (a second a run), so the figures mean little; the shape of the
result and the clean-up are what is checked. Traffic goes to containers this test starts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from docker import DockerClient

from scripts import bench
from scripts.bench import BenchOptions
from scripts.errors import GateFailed
from scripts.image import ImageRecord
from scripts.settings import Settings


def free_port_pair() -> int:
    """A port P on 127.0.0.1 such that P and P + 1 are both free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        if port < 65534:
            return port
    raise AssertionError("no two adjacent free ports on 127.0.0.1")


def test_a_short_bench_measures_every_phase_and_writes_its_report(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord, tmp_path: Path
) -> None:
    options = BenchOptions(
        concurrency=(1, 8),
        reference=8,
        duration=2,  # the engine reads stats once a second: two readings per run
        warmup=0,
        rounds=2,
        hold=300,
        hold_duration=2,
        soak=6,
        soak_round=1,
        replica_connections=8,
        bench_port=free_port_pair(),
        swarm_project="zpbenchtest",
    )
    result = bench.measure(settings, docker_engine, options, image=built.tag, image_id=built.id)
    # With no baseline the gate fails only when something else on the machine took the
    # servers' CPU (the run is then inconclusive); the files are written before it judges.
    failure = ""
    try:
        bench.finish(result, options, out_dir=tmp_path, baseline_path=tmp_path / "baseline.json")
    except GateFailed as exc:
        failure = str(exc)
    assert not failure or failure.startswith("bench inconclusive")

    for target in ("service", "ceiling"):
        assert [p.connections for p in result.sweep(target)] == [1, 8]
        assert all(p.rps > 0 and p.non_2xx == 0 for p in result.sweep(target))
    assert len(result.rounds) == 2
    loopback = next(p for p in result.points if p.target == "service-loopback")
    assert loopback.rps > 0
    assert result.soak is not None
    assert len(result.soak.rounds) == 6
    assert result.soak.requests > 0
    assert result.soak.errors == 0
    assert result.soak.slope() is not None
    assert result.hold is not None
    assert result.hold.connections == 300
    assert "kept running" in result.hold.note
    assert [p.target for p in result.replicas] == ["replicas-1", "replicas-2"]
    assert all(p.rps > 0 for p in result.replicas)
    assert result.scaling_efficiency() is not None
    assert result.timeline, "the service container's memory was sampled"
    assert any(p.cpu_cores for p in result.points)
    assert result.limits == {"cpus": 1.0, "memory": 384 << 20, "pids": 64}

    written = json.loads((tmp_path / f"{result.started}.json").read_text())
    assert written["figures"]["connections"] == 8
    assert (tmp_path / f"{result.started}.png").stat().st_size > 10_000
    assert "share this machine's" in (tmp_path / f"{result.started}.md").read_text()
    assert (tmp_path / "latest.json").exists()

    own = {"label": f"{bench.LABEL}={result.started}"}
    assert docker_engine.containers.list(all=True, filters=own) == []
    stack_label = {"label": "com.docker.stack.namespace=zpbenchtest"}
    assert docker_engine.containers.list(all=True, filters=stack_label) == []
