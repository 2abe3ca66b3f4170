"""The in-network load generator's command line and image tag (no Docker)."""

from __future__ import annotations

import pytest

from scripts.bench import loadgen
from scripts.core.errors import ParamError


def test_wrk_in_the_container_spreads_its_threads_over_the_replicas() -> None:
    args = loadgen.command("http://app:8080/", connections=64, duration=5, threads=2)
    assert args[:6] == ["-t", "2", "-c", "64", "-d", "5s"]
    assert "--latency" in args
    assert args[-3:] == ["--script", loadgen.SPREAD, "http://app:8080/"]


def test_impossible_loads_are_refused_before_a_container_starts() -> None:
    with pytest.raises(ParamError, match="connections"):
        loadgen.command("http://app:8080/", connections=1, duration=5, threads=2)


def test_the_recipe_installs_wrk_and_ships_the_spreading_script() -> None:
    dockerfile = (loadgen.RECIPE / "Dockerfile").read_text()
    assert "install -y -q --no-install-recommends wrk" in dockerfile
    assert "COPY spread.lua " + loadgen.SPREAD in dockerfile
    assert "thread.addr" in (loadgen.RECIPE / "spread.lua").read_text()
