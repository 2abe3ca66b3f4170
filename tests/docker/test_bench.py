"""Short benches against the project's image: every phase runs, the report is written, the
first run on a machine with no baseline records one and passes, nothing is left behind.
Durations are tiny (a second or two a run), so the figures mean little; the shape of the
result, the verdicts and the clean-up are what is checked. Traffic goes to containers these
tests start."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from docker import DockerClient

from scripts.bench import run as bench
from scripts.bench import servers, service
from scripts.bench.gate import targets
from scripts.bench.options import BenchOptions
from scripts.core.errors import GateFailed
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings


def free_ports(count: int) -> int:
    """A port P on 127.0.0.1 such that P .. P + count - 1 are all free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + count >= 65535:
            continue
        free = True
        for offset in range(1, count):
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port + offset))
                except OSError:
                    free = False
                    break
        if free:
            return port
    raise AssertionError(f"no {count} adjacent free ports on 127.0.0.1")


def free_port_pair() -> int:
    """A port P on 127.0.0.1 such that P and P + 1 are both free now."""
    return free_ports(2)


def test_a_short_bench_measures_every_phase_and_its_first_run_becomes_the_baseline(
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
        idle_hold=300,
        idle_duration=2,
        soak=6,
        soak_round=1,
        workers=(1, 2),
        replica_connections=8,
        bench_port=free_port_pair(),
        swarm_project="zpbenchtest",
    )
    result = bench.measure(settings, docker_engine, options, image=built.tag, image_id=built.id)
    baseline = tmp_path / "baselines" / "this-machine.json"
    # Runs this short decide nothing (scaling and the soak's slope are noise over seconds):
    # the gate may fail here. It is written out either way, and a run becomes this machine's
    # first baseline only when it passes (tests/scripts/bench/test_run.py; the full-length
    # checks pass in test_canaries.py).
    failure = ""
    try:
        bench.finish(result, options, out_dir=tmp_path, baseline_path=baseline)
    except GateFailed as exc:
        failure = str(exc)
    assert baseline.is_file() is (not failure)
    assert "non-2xx" not in failure
    assert "hold" not in failure

    for target in ("service", "ceiling"):
        assert [p.connections for p in result.sweep(target)] == [1, 8]
        assert all(p.rps > 0 and p.non_2xx == 0 for p in result.sweep(target))
    assert len(result.rounds) == 2
    assert result.loop in {"uvloop", "asyncio"}
    loopback = next(p for p in result.points if p.target == "service-loopback")
    assert loopback.rps > 0
    assert result.soak is not None
    assert len(result.soak.rounds) == 6
    assert result.soak.errors == 0
    assert result.soak.slope() is not None
    assert [(h.kind, h.connections, h.survival.ok) for h in result.holds] == [
        ("busy", 300, True),
        ("idle", 300, True),
    ]
    idle = result.hold("idle")
    assert idle is not None
    assert (idle.answered, idle.errors) == (300, 0)
    for what, points in (("workers", result.workers), ("replicas", result.replicas)):
        # A miss of the scaling floor (likely in runs this short) is measured once more.
        measured_again = any(f"1 -> 2 {what} scaled at" in note for note in result.notes)
        once = [f"{what}-1", f"{what}-2"]
        assert [p.target for p in points] == (once * 2 if measured_again else once)
    assert all(p.rps > 0 for p in [*result.workers, *result.replicas])
    assert result.timeline, "the service container's memory was sampled"
    assert any(p.cpu_cores for p in result.points)
    assert result.limits == {"cpus": 1.0, "memory": 384 << 20, "pids": 64}

    written = json.loads((tmp_path / f"{result.started}.json").read_text())
    assert written["figures"]["connections"] == 8
    assert written["gate"]["checks"][0]["id"] == "BENCH-ANSWERS"
    assert written["gate"]["checks"][0]["ok"] is True
    assert (tmp_path / f"{result.started}.png").stat().st_size > 10_000
    assert "share this machine's" in (tmp_path / f"{result.started}.md").read_text()
    assert (tmp_path / "latest.json").exists()

    own = {"label": f"{servers.LABEL}={result.started}"}
    assert docker_engine.containers.list(all=True, filters=own) == []
    stack_label = {"label": "com.docker.stack.namespace=zpbenchtest"}
    assert docker_engine.containers.list(all=True, filters=stack_label) == []


@pytest.mark.timeout(900)  # the first run builds the stock image from the Debian mirror
def test_the_service_benchmark_compares_with_stock_on_the_same_python_and_loop(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord
) -> None:
    options = service.parse_args(
        [
            "--duration",
            "2",
            "--warmup",
            "1",
            "--rounds",
            "2",
            "--connections",
            "16",
            "--idle-hold",
            "200",
            "--port",
            str(free_ports(3)),
        ]
    )

    result = bench.measure(settings, docker_engine, options, image=built.tag, image_id=built.id)

    assert result.targets == ["service", "stock", "ceiling"]
    assert all(set(r.points) == {"service", "stock", "ceiling"} for r in result.rounds)
    assert all(p.rps > 0 and p.non_2xx == 0 for r in result.rounds for p in r.points.values())
    stock_tag = servers.stock_image(settings, docker_engine)  # built already: found, not rebuilt
    config = docker_engine.images.get(stock_tag).attrs["Config"]
    assert config["Entrypoint"][:3] == ["python3", "-m", "hypercorn"]
    assert config["User"] == "1000:1000"
    assert {t.name for t in targets(result)} == {
        "throughput",
        "p99",
        "share of the ceiling",
        "memory",
        "idle hold memory",
    }
